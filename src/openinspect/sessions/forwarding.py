"""Commands for a session another replica owns: sent over the bus to the owner, answered back.

Every replica listens on its own channel ``replica:<replica id>`` (the id its session leases are
held under, ``sessions/ownership.py``). ``Forwarder.send`` publishes a :class:`ForwardedCommand`
(the command, the id of the user who sent it, the door it came through, and where to answer)
on the owner's channel and waits up to ``ownership.forward_timeout_s`` for the
:class:`Answer`: a JSON result, or an error's code, message and hint, which is raised here again
as the same ``OpenInspectError`` subclass. No answer in time is ``OwnerUnreachable``; while it
waits, the sender checks every ``OWNER_CHECK_S`` that the owner still holds the session, and an
owner whose lease ran out (it died) is ``OwnerGone`` at once rather than after the timeout.

The owner treats a forwarded command like any other: ``serve`` (``CommandHandler.serve``) loads
the user by id and authorises them again; being a replica earns a message no trust. Every
message is size-limited (``MESSAGE_MAX_CHARS``) and parsed into these models before anything
reads it; one that does not parse is logged and dropped (its sender times out).

The bus delivers at most once: a command whose answer is lost may still have been carried out,
which is why the commands that create something take an idempotency key (``client_request_id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from openinspect.bus import Bus, SubscriberOverflow
from openinspect.domain.commands import ID_MAX, SessionCommand
from openinspect.domain.models import SessionOrigin
from openinspect.errors import InvalidInput, OpenInspectError, OwnerGone, OwnerUnreachable
from openinspect.store.leases import HOLDER_MAX
from openinspect.timeouts import wait_for

log = logging.getLogger(__name__)
MESSAGE_MAX_CHARS = 4 * 1024 * 1024
"""Largest forwarded command or answer, in characters (a prompt is at most 1 M)."""
REQUEST_ID_CHARS = 32
CODE_MAX = 64
ERROR_MESSAGE_MAX = 8000
HINT_MAX = 2000
SERVING_MAX = 64
"""Forwarded commands an owner carries out at once; more wait (their senders may time out)."""
RESUBSCRIBE_S = 0.5
OWNER_CHECK_S = 1.0
"""How often a sender waiting for an answer checks that the owner still holds the session."""


def replica_channel(replica_id: str) -> str:
    return f"replica:{replica_id}"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=REQUEST_ID_CHARS)


class ForwardedCommand(_Message):
    kind: Literal["command"] = "command"
    reply_to: str = Field(min_length=1, max_length=HOLDER_MAX)
    user_id: str = Field(min_length=1, max_length=ID_MAX)
    origin: SessionOrigin
    command: SessionCommand


class ErrorAnswer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=CODE_MAX)
    message: str = Field(max_length=ERROR_MESSAGE_MAX)
    hint: str | None = Field(None, max_length=HINT_MAX)


class Answer(_Message):
    kind: Literal["answer"] = "answer"
    result: JsonValue = None
    error: ErrorAnswer | None = None


_MESSAGE: TypeAdapter[ForwardedCommand | Answer] = TypeAdapter(
    Annotated[ForwardedCommand | Answer, Field(discriminator="kind")]
)
Serve = Callable[[ForwardedCommand], Awaitable[JsonValue]]


def _error_classes(base: type[OpenInspectError]) -> dict[str, type[OpenInspectError]]:
    found = {base.code: base}
    for sub in base.__subclasses__():
        found.update(_error_classes(sub))
    return found


def error_from(answer: ErrorAnswer) -> OpenInspectError:
    """The ``OpenInspectError`` an answer reports, as the same subclass (by its code); the
    base class for a code this server does not know (a newer owner)."""
    cls = _error_classes(OpenInspectError).get(answer.code, OpenInspectError)
    try:
        return cls(answer.message, hint=answer.hint)
    except TypeError:  # an error with arguments of its own; commands never raise those
        return OpenInspectError(answer.message, hint=answer.hint)


class Forwarder:
    """This replica's end of forwarding: sends commands to owners, serves those sent to it."""

    def __init__(self, bus: Bus, replica_id: str, *, timeout_s: float, serve: Serve) -> None:
        self.replica_id = replica_id
        self._bus = bus
        self._timeout_s = timeout_s
        self._serve = serve
        self._pending: dict[str, asyncio.Future[Answer]] = {}
        self._serving = asyncio.Semaphore(SERVING_MAX)
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen on this replica's channel; returns once subscribed."""
        if self._listener is not None:
            return
        ready = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(ready), name="forwarded commands")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({waiter, self._listener}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._listener.done():
            self._listener.result()  # the bus is unusable: raise what it raised

    async def stop(self) -> None:
        tasks = [t for t in (self._listener, *self._tasks) if t is not None]
        self._listener = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for future in self._pending.values():
            future.cancel()

    async def send(
        self,
        owner: str,
        user_id: str,
        origin: SessionOrigin,
        command: SessionCommand,
        *,
        still_owner: Callable[[], Awaitable[bool]] | None = None,
    ) -> JsonValue:
        """Have ``owner`` carry out ``command`` for ``user_id``; its JSON result. Raises the
        owner's error, ``OwnerUnreachable`` when it does not answer in time, or ``OwnerGone``
        as soon as ``still_owner()`` says it no longer holds the session."""
        request = ForwardedCommand(
            id=secrets.token_hex(REQUEST_ID_CHARS // 2),
            reply_to=self.replica_id,
            user_id=user_id,
            origin=origin,
            command=command,
        )
        text = request.model_dump_json()
        if len(text) > MESSAGE_MAX_CHARS:
            raise InvalidInput(
                f"The command has {len(text)} characters; at most {MESSAGE_MAX_CHARS} are sent",
                hint="Shorten it",
            )
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = future
        try:
            await self._bus.publish(replica_channel(owner), text)
            answer = await self._wait(future, command, still_owner)
        finally:
            self._pending.pop(request.id, None)
        if answer.error is not None:
            raise error_from(answer.error)
        return answer.result

    async def _wait(
        self,
        future: asyncio.Future[Answer],
        command: SessionCommand,
        still_owner: Callable[[], Awaitable[bool]] | None,
    ) -> Answer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        while (remaining := deadline - loop.time()) > 0:
            try:
                return await wait_for(asyncio.shield(future), min(remaining, OWNER_CHECK_S))
            except TimeoutError:
                if still_owner is not None and not await still_owner():
                    raise OwnerGone(
                        f"The server that ran session {command.session_id} stopped before it "
                        "answered; the command may or may not have been carried out",
                        hint="Send it again (with the same client_request_id for a prompt); "
                        "another server takes the session over within seconds",
                    ) from None
        raise OwnerUnreachable(
            f"The server that runs session {command.session_id} did not answer within "
            f"{self._timeout_s:g} s",
            hint="Try again shortly: if that server stopped, another one takes the session "
            "over within seconds",
        )

    async def _listen(self, ready: asyncio.Event) -> None:
        while True:
            try:
                async with self._bus.subscribe(replica_channel(self.replica_id)) as messages:
                    ready.set()
                    async for raw in messages:
                        self._take(raw)
            except SubscriberOverflow:
                log.warning("forwarded commands: fell behind; listening again")
            await asyncio.sleep(RESUBSCRIBE_S)

    def _take(self, raw: str) -> None:
        if len(raw) > MESSAGE_MAX_CHARS:
            log.warning("forwarded commands: dropped a message of %d characters", len(raw))
            return
        try:
            message = _MESSAGE.validate_json(raw)
        except ValidationError as exc:
            log.warning(
                "forwarded commands: dropped a malformed message (%d errors)", len(exc.errors())
            )
            return
        if isinstance(message, Answer):
            future = self._pending.get(message.id)
            if future is not None and not future.done():
                future.set_result(message)
            return
        task = asyncio.create_task(self._answer(message), name=f"forwarded {message.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: ForwardedCommand) -> None:
        async with self._serving:
            try:
                answer = Answer(id=request.id, result=await self._serve(request))
            except OpenInspectError as exc:
                answer = Answer(id=request.id, error=_error_answer(exc))
            except Exception:
                log.exception("a forwarded %s command failed", request.command.type)
                answer = Answer(
                    id=request.id,
                    error=ErrorAnswer(code="internal", message="The command failed on its owner"),
                )
        text = answer.model_dump_json()
        if len(text) > MESSAGE_MAX_CHARS:
            too_big = ErrorAnswer(code="internal", message="The answer was too large to send")
            text = Answer(id=request.id, error=too_big).model_dump_json()
        with contextlib.suppress(Exception):  # the sender times out with a clear error
            await self._bus.publish(replica_channel(request.reply_to), text)


def _error_answer(exc: OpenInspectError) -> ErrorAnswer:
    return ErrorAnswer(
        code=exc.code[:CODE_MAX],
        message=exc.message[:ERROR_MESSAGE_MAX],
        hint=exc.hint[:HINT_MAX] if exc.hint else None,
    )
