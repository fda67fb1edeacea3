"""A tiny wheel made on the spot, for tests and benchmarks that install a real package without
a network: ``pip install --no-index --find-links <dir> <name>`` does real work (unpack, record,
byte-compile) against a local package directory."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(
    dest_dir: Path,
    name: str = "tinypkg",
    version: str = "1.0",
    *,
    value: int = 42,
    modules: int = 1,
) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` into ``dest_dir``; its package ``name``
    has ``VALUE = value`` and ``modules - 1`` more modules (more work to install). Returns
    the wheel's path."""
    dist_info = f"{name}-{version}.dist-info"
    files: dict[str, bytes] = {f"{name}/__init__.py": f"VALUE = {value}\n".encode()}
    for i in range(1, modules):
        files[f"{name}/mod{i}.py"] = f"def f{i}():\n    return {i}\n".encode()
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: a test package\n"
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: openinspect.testing\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    dest_dir.mkdir(parents=True, exist_ok=True)
    wheel = dest_dir / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel
