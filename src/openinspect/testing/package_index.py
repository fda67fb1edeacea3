"""A local Python package index (PEP 503 "simple" API) serving wheels it builds itself.

The stand-in for PyPI in tests and benchmarks: no test reaches the internet. Each package is a
pure-Python wheel made with :mod:`zipfile` (one module whose ``VALUE`` is set), served over
real HTTP from a thread, so ``pip install --index-url <server.url>/simple/ <name>`` works
unchanged, through the egress proxy or not::

    with PackageIndex({"eggtest": 42}) as index:
        index.url  # http://127.0.0.1:<port>
        index.requests  # the paths asked for, in order
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

VERSION = "1.0"


def build_wheel(name: str, value: int) -> tuple[str, bytes]:
    """(file name, bytes) of a wheel of ``name`` whose module says ``VALUE = value``."""
    dist = f"{name}-{VERSION}"
    files = {
        f"{name}/__init__.py": f"VALUE = {value}\n".encode(),
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {VERSION}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: openinspect.testing\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


@dataclass(frozen=True)
class _Wheel:
    filename: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class PackageIndex:
    """A simple index of ``packages`` (name → the ``VALUE`` its module holds) on 127.0.0.1."""

    def __init__(self, packages: dict[str, int]) -> None:
        self._wheels = {name: _Wheel(*build_wheel(name, value)) for name, value in packages.items()}
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start the index first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _page(self, path: str) -> tuple[int, str, bytes]:
        if path in ("/simple/", "/simple"):
            links = "".join(f'<a href="/simple/{n}/">{n}</a>\n' for n in self._wheels)
            return 200, "text/html", f"<!DOCTYPE html><html><body>{links}</body></html>".encode()
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "simple" and parts[1] in self._wheels:
            wheel = self._wheels[parts[1]]
            link = f'<a href="/files/{wheel.filename}#sha256={wheel.sha256}">{wheel.filename}</a>'
            return 200, "text/html", f"<!DOCTYPE html><html><body>{link}</body></html>".encode()
        if len(parts) == 2 and parts[0] == "files":
            for wheel in self._wheels.values():
                if wheel.filename == parts[1]:
                    return 200, "application/octet-stream", wheel.data
        return 404, "text/plain", b"not found\n"

    def __enter__(self) -> PackageIndex:
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.requests.append(self.path)
                status, kind, body = index._page(self.path.split("?", 1)[0])
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
