"""Fan-out of a session's bus messages to this replica's WebSocket clients.

One bus subscription per session per process, not one per client: each message is parsed and
encoded into its frame once, then handed to every client of the session by reference. Each
client has its own bounded queue, drained by its own sender, so a slow client delays no one
else; a client whose queue fills up is cut off (it reconnects with ``since_seq`` and resyncs
from the log), as are all of a session's clients when the bus subscription itself overflows.

Compression (permessage-deflate) happens per connection inside the ASGI server, after the app
hands it a frame's text: a deflate context is per connection, so it cannot be shared. Whether
to offer it is ``server.ws_compression``, chosen by measurement (``bench/fanout.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from openinspect.api.ws_frames import Frame, translate
from openinspect.bus import SubscriberOverflow
from openinspect.sessions.eventlog import EventLog


class ClientFellBehind(Exception):
    """The client's queue overflowed, or the session's bus subscription did."""


class ClientQueue:
    """The frames waiting for one client, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._frames: deque[Frame] = deque()
        self._ready = asyncio.Event()
        self._cut = asyncio.Event()
        self.fell_behind = False

    def put(self, frame: Frame) -> bool:
        """Queue a frame; False (and the client marked as behind) when the queue is full."""
        if self.fell_behind:
            return False
        if len(self._frames) >= self._limit:
            self.cut_off()
            return False
        self._frames.append(frame)
        self._ready.set()
        return True

    def cut_off(self) -> None:
        self.fell_behind = True
        self._frames.clear()
        self._ready.set()
        self._cut.set()

    async def wait_cut_off(self) -> None:
        """Return once the client is cut off: its sender may be stuck in a send to a client
        that stopped reading, so the socket's owner watches this too."""
        await self._cut.wait()

    async def take(self) -> list[Frame]:
        """Every frame queued so far (waiting for one); ``ClientFellBehind`` once cut off."""
        while not self._frames:
            if self.fell_behind:
                raise ClientFellBehind
            self._ready.clear()
            await self._ready.wait()
        if self.fell_behind:
            raise ClientFellBehind
        frames = list(self._frames)
        self._frames.clear()
        return frames


class _SessionFanout:
    """One session's bus subscription and the queues of its clients here."""

    def __init__(self, events: EventLog, session_id: str) -> None:
        self.clients: set[ClientQueue] = set()
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._pump(events, session_id), name=f"fanout {session_id}")

    async def _pump(self, events: EventLog, session_id: str) -> None:
        try:
            async with events.subscribe(session_id) as messages:
                self.subscribed.set_result(None)
                async for raw in messages:
                    frame = translate(raw)
                    for client in list(self.clients):
                        if not client.put(frame):
                            self.clients.discard(client)
        except SubscriberOverflow:
            pass
        except asyncio.CancelledError:
            self.subscribed.cancel()  # no-op once subscribed
            raise
        except Exception as exc:
            if not self.subscribed.done():
                self.subscribed.set_exception(exc)
            raise
        finally:
            for client in self.clients:  # whoever is still here must resync
                client.cut_off()
            self.clients.clear()
            if not self.subscribed.done():
                self.subscribed.set_exception(ClientFellBehind())


class Fanout:
    """The process's fan-out, one ``_SessionFanout`` per session that has clients here."""

    def __init__(self, events: EventLog, queue_limit: int) -> None:
        self._events = events
        self._queue_limit = queue_limit
        self._sessions: dict[str, _SessionFanout] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    @contextlib.asynccontextmanager
    async def join(self, session_id: str) -> AsyncIterator[ClientQueue]:
        """A queue that gets every message published on the session's channel once this is
        entered (the bus subscription is live by then), until it is left."""
        fanout = self._sessions.get(session_id)
        if fanout is None or fanout.task.done():
            fanout = self._sessions[session_id] = _SessionFanout(self._events, session_id)
        queue = ClientQueue(self._queue_limit)
        fanout.clients.add(queue)  # before waiting, so a leaving client keeps it alive
        try:
            await asyncio.shield(fanout.subscribed)
            yield queue
        finally:
            fanout.clients.discard(queue)
            if not fanout.clients and self._sessions.get(session_id) is fanout:
                del self._sessions[session_id]
                fanout.task.cancel()
                await asyncio.gather(fanout.task, return_exceptions=True)

    async def close(self) -> None:
        fanouts = list(self._sessions.values())
        self._sessions.clear()
        for fanout in fanouts:
            fanout.task.cancel()
        await asyncio.gather(*(f.task for f in fanouts), return_exceptions=True)
