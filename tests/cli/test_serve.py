"""The server's logging configuration (``openinspect serve``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from openinspect.cli.serve import QUIET_LOGGERS, configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    names = ["", *QUIET_LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def model_request() -> None:
    """An HTTP request as a model provider makes one (pydantic-ai's providers use httpx)."""
    answer = httpx.MockTransport(lambda request: httpx.Response(200, json={"choices": []}))
    with httpx.Client(transport=answer) as client:
        client.post("http://127.0.0.1:9/v1/chat/completions", json={"model": "m"})


@pytest.mark.usefixtures("restored_logging")
def test_model_http_requests_are_not_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("info")
    logging.getLogger().setLevel(logging.INFO)  # basicConfig skips it: pytest's handlers exist
    model_request()
    logging.getLogger("openinspect.test").info("still logged")
    assert [r.getMessage() for r in caplog.records] == ["still logged"]
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING


@pytest.mark.usefixtures("restored_logging")
def test_debug_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("debug")
    logging.getLogger().setLevel(logging.DEBUG)
    model_request()
    assert any(r.name == "httpx" and "HTTP Request" in r.getMessage() for r in caplog.records)
