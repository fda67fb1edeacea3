"""Webhook delivery as GitHub does it: a signed JSON POST per event, recorded with its status.

Control calls (``merge_pull``…) deliver synchronously from the caller's thread, so a test knows
the delivery was made when the call returns. Events caused by API requests or git pushes are
queued and sent by one background thread in order, as GitHub delivers them after answering;
``wait_for`` awaits them.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from openinspect.scm.webhooks import sign

DEFAULT_DELIVERY_TIMEOUT_S = 5.0
USER_AGENT = "GitHub-Hookshot/fake"


class Delivery(BaseModel):
    """One POST to the webhook URL. A redelivery keeps the original ``id`` and body."""

    model_config = ConfigDict(frozen=True)

    id: str
    event: str
    action: str | None
    url: str
    body: str
    headers: dict[str, str]
    status_code: int | None
    """The receiver's answer, or None when it could not be reached (see ``error``)."""
    error: str | None
    redelivery: bool
    delivered_at: float

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class Deliverer:
    """Sends deliveries and keeps the list of what was sent."""

    def __init__(self, timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._records: list[Delivery] = []
        self._queue: queue.Queue[tuple[str, str, str, str] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._run, name="fake-github-webhooks", daemon=True
            )
            self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout_s)
            self._worker = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self.send(*item)

    @staticmethod
    def body_of(payload: dict[str, Any]) -> str:
        return json.dumps(payload, separators=(",", ":"))

    def send(
        self,
        url: str,
        secret: str,
        event: str,
        body: str,
        *,
        delivery_id: str | None = None,
        redelivery: bool = False,
    ) -> Delivery:
        """POST one delivery now, in this thread, and record it."""
        delivery_id = delivery_id or str(uuid.uuid4())
        raw = body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": sign(secret.encode(), raw),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = httpx.post(url, content=raw, headers=headers, timeout=self.timeout_s)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        action = json.loads(body).get("action")
        record = Delivery(
            id=delivery_id,
            event=event,
            action=action if isinstance(action, str) else None,
            url=url,
            body=body,
            headers=headers,
            status_code=status,
            error=error,
            redelivery=redelivery,
            delivered_at=time.time(),
        )
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()
        return record

    def enqueue(self, url: str, secret: str, event: str, body: str) -> None:
        """Deliver later, from the background thread, in order."""
        self._queue.put((url, secret, event, body))

    def records(self) -> list[Delivery]:
        with self._cond:
            return list(self._records)

    def find(self, delivery_id: str) -> Delivery | None:
        with self._cond:
            return next((d for d in self._records if d.id == delivery_id), None)

    def wait_for(
        self, predicate: Callable[[list[Delivery]], bool], timeout_s: float
    ) -> list[Delivery]:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._records), timeout=timeout_s):
                seen = [(d.event, d.action) for d in self._records]
                raise TimeoutError(
                    f"the expected webhook deliveries did not happen within {timeout_s}s; "
                    f"delivered so far: {seen}"
                )
            return list(self._records)
