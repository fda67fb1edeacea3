"""SessionActor: the one owner of a live session's state.

Commands (submit, cancel, stop, typing) take the actor's lock, change the store, append events and
wake the queue runner, a single task that runs prompts one at a time in FIFO order. A prompt's
run is its own task so that ``stop`` can cancel it; whatever happens, the prompt ends with exactly
one ``prompt-finished`` event, after its changes were committed and pushed.

An actor lives on the replica that owns its session (``sessions/ownership.py``): it holds the
session's ``lease`` and passes it as the fence of every append it makes. When the lease is lost
(another replica took the session over) the actor is ``closed`` and ``lose`` stops it at once:
the running prompt is cancelled without a word written (its new owner marks it interrupted) and
the box is destroyed. A command that reaches a closed actor raises ``SessionMoved`` before it
changes anything, and the command handler routes it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from openinspect.agent.models import ModelRegistry
from openinspect.domain.events import (
    NOTIFY_TEXT_MAX_CHARS,
    ErrorInfo,
    Event,
    GitCommit,
    Notify,
    PromptCancelled,
    PromptFinished,
    PromptQueued,
    PromptStarted,
    SessionUpdated,
    Usage,
    WarningEvent,
    utcnow,
)
from openinspect.domain.ids import new_id
from openinspect.domain.models import (
    UNTITLED_SESSION,
    Author,
    Prompt,
    PromptStatus,
    PullRequestRecord,
    Session,
    SessionStatus,
    User,
)
from openinspect.errors import (
    GitError,
    InvalidInput,
    LeaseLost,
    NotConfigured,
    PromptNotCancellable,
    PromptNotFound,
    PromptRequestConflict,
    PromptTooLarge,
    QueueFull,
    SandboxError,
    SessionBusy,
    SessionMoved,
    SessionNotPromptable,
)
from openinspect.sandboxes.base import SandboxProvider
from openinspect.sandboxes.bridge import BridgeHub, SandboxConnection
from openinspect.secrets.redact import EMPTY, Redactor, SecretRedaction
from openinspect.sessions.boxes import BoxMaker
from openinspect.sessions.eventlog import EventLog
from openinspect.sessions.fork import fork_note
from openinspect.sessions.git import (
    clip_git_output,
    commit_in_sandbox,
    commit_message,
    push_in_sandbox,
)
from openinspect.sessions.origins import Origins
from openinspect.sessions.pool import WarmPool
from openinspect.sessions.pulls import PullRequests
from openinspect.sessions.sandbox import SessionSandbox
from openinspect.sessions.spend import SpendGate
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.changes import Change, NewPrompt, PromptMove
from openinspect.store.leases import Lease
from openinspect.store.mcp_servers import McpServer

if TYPE_CHECKING:
    from openinspect.agent.conversation import Conversation
    from openinspect.agent.guidance import Guidance
    from openinspect.agent.runner import Agents, RunOutcome

log = logging.getLogger(__name__)
CLIENT_REQUEST_ID_MAX = 128


def check_prompt(settings: Settings, content: str, client_request_id: str | None) -> None:
    """The checks of a prompt's own text, apart from any session: a session create with a first
    prompt runs them before it creates anything, so a refused prompt leaves no session behind."""
    limit = settings.sessions.max_prompt_chars
    if len(content) > limit:
        raise PromptTooLarge(
            f"The prompt has {len(content)} characters; the limit is {limit}",
            hint="Shorten it, or attach long material as a file in the repo",
        )
    if not content.strip():
        raise InvalidInput("The prompt is empty")
    if client_request_id is not None and not 0 < len(client_request_id) <= CLIENT_REQUEST_ID_MAX:
        raise InvalidInput(f"client_request_id must be 1 to {CLIENT_REQUEST_ID_MAX} characters")


TITLE_FROM_PROMPT_CHARS = 80
PUSH_FAILED_HINT = (
    "The changes are committed in the session's sandbox; the next prompt's push sends them again"
)
COMMIT_FAILED_HINT = "The changes are still in the session's sandbox, uncommitted"


@dataclass(frozen=True)
class SessionDeps:
    """What every session actor (and the manager that owns them) is built on."""

    settings: Settings
    store: Store
    events: EventLog
    models: ModelRegistry
    hub: BridgeHub
    provider: SandboxProvider
    origins: Origins
    pulls: PullRequests
    redaction: SecretRedaction | None = None
    """Where a session's boxes' secret values are tracked, to keep them out of its events."""
    pool: WarmPool | None = None
    """The warm pool of ready boxes a session's fresh box is claimed from (None: no pool)."""
    maker: BoxMaker | None = None
    """How boxes are made, shared by the sessions and the pool (None: each session's own)."""


Admission = Callable[[User, "SessionActor"], Awaitable[None]]
"""Per-user limits on a new prompt, given by the manager (``sessions.limits``); raises to refuse."""


def fingerprint(author_id: str, content: str, model: str | None, effort: str | None) -> str:
    raw = "\x00".join((author_id, content, model or "", effort or ""))
    return hashlib.sha256(raw.encode()).hexdigest()


class SessionActor:
    def __init__(
        self,
        session: Session,
        deps: SessionDeps,
        *,
        lease: Lease | None = None,
        admission: Admission | None = None,
        on_lease_lost: Callable[[str], None] | None = None,
    ) -> None:
        """``lease``: this replica's ownership of the session, the fence of every append;
        ``on_lease_lost``: told the session id when an append was refused because another
        replica took the session over."""
        self.session = session
        self._s = deps
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._current: asyncio.Task[RunOutcome] | None = None
        self._stop_requested = False
        self._running_prompt_id: str | None = None
        # The session's queued prompts, oldest first, as this owner queued, started and
        # cancelled them (every change to them goes through this actor, under ``_lock``); None
        # until first read from the store, and again whenever a write's outcome is unknown.
        # The store stays the truth: starting or cancelling one is guarded there.
        self._queued: list[Prompt] | None = None
        self._git_lock = asyncio.Lock()  # one commit/push at a time (prompt end, PR tool, API)
        # The agent's history as stored, loaded by the first prompt run here.
        self._conversation: Conversation | None = None
        self._agents: Agents | None = None  # built by the first prompt, reused by the next
        # The repo's root AGENTS.md/CLAUDE.md as the box had them when the last prompt ended,
        # with that box: the next prompt on the same box starts with them without asking it.
        self._root_instructions: tuple[SandboxConnection, str] | None = None
        # When the session last had work (a prompt queued or ended, someone typing): the idle
        # clock of its sandbox (``stop_if_idle``).
        self.last_work_at = time.monotonic()
        self._admission = admission
        self.spend = SpendGate(deps.store, session.id, session.repo_id, self.emit)
        """The session's pause at its spend limits (``sessions.spend``)."""
        self.lease = lease
        self._on_lease_lost = on_lease_lost
        self.closed = False
        """No command is taken any more (evicted, lost or shut down)."""
        self.sandbox = SessionSandbox(
            session,
            settings=deps.settings,
            store=deps.store,
            origins=deps.origins,
            hub=deps.hub,
            provider=deps.provider,
            emit=self.emit,
            commit=self.commit,
            redaction=deps.redaction,
            pool=deps.pool,
            maker=deps.maker,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run_queue(), name=f"queue {self.session.id}")
            self._wake.set()

    async def close(self) -> None:
        """Stop the running prompt (it is marked interrupted) and the sandbox."""
        self.closed = True
        await self._stop_runner()
        await self.sandbox.destroy()

    async def discard(self) -> None:
        """The session was deleted (an abandoned draft): stop everything, record nothing."""
        self.closed = True
        await self._stop_runner()
        await self.sandbox.discard()

    async def lose(self) -> None:
        """The lease was lost: another replica owns the session now. Stop everything at once
        and write nothing (the fence would refuse it anyway); the new owner marks the running
        prompt interrupted and the box lost."""
        await self.discard()

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeaseLost):
                await runner

    def _check_open(self) -> None:
        """Refuse a command on a closed actor, before it changes anything."""
        if self.closed:
            raise SessionMoved(
                f"Session {self.session.id} is no longer live on this server",
                hint="Send the command again; it goes to the server that owns the session",
            )

    async def emit(self, event: Event) -> Event:
        stored = await self.commit(Change(event))
        assert stored is not None  # no prompt, no guard
        return stored

    async def commit(self, change: Change) -> Event | None:
        """A state change and its event in one transaction (``store/changes.py``), under this
        actor's fence; None when its guard refused it (nothing written). A fence refusal means
        another replica owns the session: the actor closes, and the manager is told
        (``on_lease_lost``)."""
        try:
            stored = await self._s.events.commit(replace(change, fence=self.lease))
        except LeaseLost:
            if not self.closed:
                self.closed = True
                log.warning("session %s: an append was fenced off; stopping", self.session.id)
                if self._on_lease_lost is not None:
                    self._on_lease_lost(self.session.id)
            raise
        if isinstance(stored, Usage):  # the session's total, as the store derived it
            self.session = self.session.model_copy(update={"total_cost_usd": stored.total_cost_usd})
        return stored

    async def _set_status(self, status: SessionStatus, *, unit: str | None = None) -> None:
        if self.session.status == status:
            return
        await self._update_with_event(
            SessionUpdated(session_id=self.session.id, status=status), unit=unit
        )

    # -- commands --------------------------------------------------------------------------

    async def submit(
        self,
        user: User,
        content: str,
        *,
        model: str | None = None,
        effort: str | None = None,
        client_request_id: str | None = None,
    ) -> Prompt:
        """Queue a prompt. Idempotent by ``client_request_id``."""
        limits = self._s.settings.sessions
        check_prompt(self._s.settings, content, client_request_id)
        if self.session.status in ("archived", "failed"):
            raise SessionNotPromptable(
                f"The session is {self.session.status}",
                hint="Unarchive it first" if self.session.status == "archived" else None,
            )
        await self._s.models.check(model or self.session.model, self._effort(model, effort))
        print_ = fingerprint(user.id, content, model, effort)
        async with self._lock:
            self._check_open()
            if self.session.status in ("archived", "failed"):  # archived while we waited
                raise SessionNotPromptable(
                    f"The session is {self.session.status}",
                    hint="Unarchive it first" if self.session.status == "archived" else None,
                )
            self.last_work_at = time.monotonic()
            if client_request_id is not None:
                found = await self._s.store.prompts.by_client_request_id(
                    self.session.id, client_request_id
                )
                if found is not None:
                    prompt, earlier = found
                    if earlier != print_:
                        raise PromptRequestConflict(
                            f"client_request_id {client_request_id!r} was already used for a "
                            "different prompt",
                            hint="Use a new id for a new prompt",
                        )
                    return prompt
            if self._admission is not None:
                await self._admission(user, self)
            queued = await self._queued_prompts()
            unfinished = len(queued) + (self._running_prompt_id is not None)
            if unfinished >= limits.max_unfinished_prompts:
                raise QueueFull(
                    f"The session already has {unfinished} unfinished prompts "
                    f"(limit {limits.max_unfinished_prompts})",
                    hint="Wait for one to finish or cancel a queued prompt",
                )
            prompt = Prompt(
                id=new_id("prm"),
                session_id=self.session.id,
                author=Author.of(user),
                content=content,
                model=model,
                effort=effort,
                client_request_id=client_request_id,
                status="queued",
                error_code=None,
                error_message=None,
                created_at=utcnow(),
                started_at=None,
                finished_at=None,
            )
            # The prompt's row, its author a participant, and its event: one transaction. The
            # session turning active (and, on its first prompt, its title) is queued to the event
            # log with it, so its group commit writes them in order in one transaction.
            steps = [
                self.commit(
                    Change(
                        PromptQueued(
                            session_id=self.session.id,
                            prompt_id=prompt.id,
                            author=prompt.author,
                            content=content,
                            model=model or self.session.model,
                            effort=self._effort(prompt.model, prompt.effort),
                            client_request_id=client_request_id,
                            position=unfinished,
                        ),
                        prompt=NewPrompt(prompt, print_),
                        unit=prompt.id,
                    )
                ),
                self._set_status("active", unit=prompt.id),
            ]
            if self.session.title == UNTITLED_SESSION:
                steps.append(self._name_after(content, unit=prompt.id))
            try:
                await asyncio.gather(*steps)
            except BaseException:
                self._queued = None  # whether the prompt was stored is unknown: read it again
                raise
            queued.append(prompt)
        self.start()
        self._wake.set()
        return prompt

    async def _name_after(self, content: str, *, unit: str | None = None) -> None:
        """A session created without a title takes the first line of its first prompt."""
        first = next((line.strip() for line in content.splitlines() if line.strip()), "")
        title = (
            first
            if len(first) <= TITLE_FROM_PROMPT_CHARS
            else first[: TITLE_FROM_PROMPT_CHARS - 1].rstrip() + "…"
        )
        await self._update_with_event(
            SessionUpdated(session_id=self.session.id, title=title), unit=unit
        )

    async def cancel(self, prompt_id: str) -> None:
        """Cancel a queued prompt."""
        async with self._lock:
            self._check_open()
            prompt = await self._s.store.prompts.get(prompt_id)
            if prompt is None or prompt.session_id != self.session.id:
                raise PromptNotFound(f"No prompt {prompt_id!r} in session {self.session.id}")
            self._queued = None  # read again after the move, whatever it did
            cancelled = await self.commit(
                Change(
                    PromptCancelled(session_id=self.session.id, prompt_id=prompt_id),
                    prompt=PromptMove(prompt_id, "cancelled", only_if=("queued",)),
                )
            )
            if cancelled is None:  # no longer queued (it may have started since the read)
                status = (await self._s.store.prompts.get(prompt_id) or prompt).status
                hint = "Use stop to end the running prompt" if status == "running" else None
                raise PromptNotCancellable(f"The prompt is {status}, not queued", hint=hint)

    async def stop(self) -> bool:
        """Stop the running prompt. Returns False when nothing was running. A prompt still
        starting (its agent not built yet) is stopped as soon as its agent task exists."""
        if self._running_prompt_id is None:
            return False
        self._stop_requested = True
        task = self._current
        if task is not None and not task.done():
            task.cancel()
        return True

    def typing(self) -> None:
        """Someone is typing a prompt: start the sandbox now so it is ready sooner."""
        self._check_open()
        self.last_work_at = time.monotonic()
        self.sandbox.reset_failure()
        self.sandbox.warm()

    # -- tidying ---------------------------------------------------------------------------

    async def rename(self, title: str) -> Session:
        """Give the session a new title (already validated), with its ``session-updated``."""
        async with self._lock:
            self._check_open()
            await self._update_with_event(SessionUpdated(session_id=self.session.id, title=title))
        return self.session

    async def archive(self) -> Session:
        """Archive the session and stop its sandbox. Refused (``session_busy``) while a prompt
        is queued or running: stop or cancel it first, so archiving never loses work."""
        async with self._lock:
            self._check_open()
            if self.session.status == "archived":
                return self.session
            unfinished = await self._s.store.prompts.unfinished(self.session.id)
            if unfinished or self._current is not None:
                raise SessionBusy(
                    f"The session has {len(unfinished) or 1} unfinished prompt(s)",
                    hint="Stop the running prompt and cancel queued ones, then archive",
                )
            await self._update_with_event(
                SessionUpdated(session_id=self.session.id, status="archived")
            )
            await self.sandbox.destroy(message="archived")
        return self.session

    async def unarchive(self) -> Session:
        """Bring an archived session back; it takes prompts again (status ``idle``)."""
        async with self._lock:
            self._check_open()
            if self.session.status == "archived":
                await self._update_with_event(
                    SessionUpdated(session_id=self.session.id, status="idle")
                )
        return self.session

    async def _update_with_event(self, event: SessionUpdated, *, unit: str | None = None) -> None:
        """Change the session row and append the event announcing it, in one transaction; the
        actor's copy of the session then takes the same values. ``unit``: see ``Change``."""
        values = {
            k: v for k, v in {"status": event.status, "title": event.title}.items() if v is not None
        }
        stored = await self.commit(Change(event, session=values, unit=unit))
        assert isinstance(stored, SessionUpdated)  # no prompt, no guard
        if stored.title is not None:  # as stored: a repo secret in it is redacted
            values["title"] = stored.title
        self.session = self.session.model_copy(update={**values, "updated_at": stored.ts})

    def is_idle(self) -> bool:
        """No prompt is running here and its sandbox is up (or coming up)."""
        return self._current is None and self.sandbox.status in ("warming", "booting", "ready")

    async def stop_if_idle(self, idle_s: float) -> bool:
        """Snapshot, then stop the sandbox when the session had no work for ``idle_s`` seconds
        and has no queued or running prompt. The end-of-prompt commit and push are done by
        then; the next prompt boots a new box restored from the snapshot (or, for a provider
        without snapshots, on the workspace left in place). A box whose snapshot fails keeps
        running (its warning says why): stopping it would leave only an older snapshot."""
        if not self.is_idle() or time.monotonic() - self.last_work_at < idle_s:
            return False
        async with self._lock:  # no prompt can be queued while we look and stop
            if not self.is_idle() or await self._s.store.prompts.unfinished(self.session.id):
                return False
            message = f"idle: no work for {idle_s:g} s; the next prompt starts a new sandbox"
            if self.sandbox.snapshots_enabled:
                async with self._git_lock:
                    if not await self.sandbox.snapshot("idle"):
                        return False
                message = (
                    f"idle: no work for {idle_s:g} s; snapshotted, the next prompt restores it"
                )
            log.info("session %s: stopping its idle sandbox", self.session.id)
            await self.sandbox.destroy(message=message)
        return True

    def evictable(self, idle_s: float) -> bool:
        """Nothing runs here, no sandbox is up, and there was no work for ``idle_s`` seconds."""
        return (
            not self.closed
            and self._current is None
            and self._running_prompt_id is None
            and self.sandbox.status in ("none", "stopped", "lost", "failed")
            and time.monotonic() - self.last_work_at >= idle_s
        )

    async def close_if_idle(self, idle_s: float) -> bool:
        """Close the actor when it is ``evictable`` and its session has no unfinished prompt
        (checked under the lock, so no command slips in between); the store keeps everything
        the next owner needs. Returns whether it closed."""
        if not self.evictable(idle_s):
            return False
        async with self._lock:
            if not self.evictable(idle_s) or await self._s.store.prompts.unfinished(
                self.session.id
            ):
                return False
            self.closed = True
        await self._stop_runner()
        return True

    async def queue(self) -> list[Prompt]:
        return await self._s.store.prompts.unfinished(self.session.id)

    # -- the queue runner ------------------------------------------------------------------

    def _effort(self, model: str | None, effort: str | None) -> str | None:
        """A prompt's effort, else the session's unless the prompt picked another model (whose
        effort options may differ)."""
        if effort is not None:
            return effort
        return self.session.effort if model is None else None

    def wake(self) -> None:
        """Look at the queue again (a spend limit changed)."""
        self._wake.set()

    async def _wait_for_work(self) -> None:
        """Until woken; while paused at a spend limit, at most ``agent.spend_recheck_s``."""
        if self.spend.paused is None:
            await self._wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._s.settings.agent.spend_recheck_s):
                await self._wake.wait()

    async def _run_queue(self) -> None:
        while not self.closed:
            await self._wait_for_work()
            self._wake.clear()
            while not self.closed:
                # Under the commands' lock: a cancel or submit under way goes first.
                async with self._lock:
                    queued = await self._queued_prompts()
                    if not queued:
                        break
                    # At a spend limit the queue pauses with the prompt still queued.
                    if await self.spend.check([queued[0].author.id], queued[0].id) is not None:
                        break
                    prompt = queued.pop(0)
                    clock = time.monotonic()
                    try:
                        started = await self._start(prompt)
                    except BaseException:
                        self._queued = None
                        raise
                    if not started:  # no longer queued in the store: read the queue again
                        self._queued = None
                        continue
                try:
                    await self._run_prompt(prompt, clock)
                finally:
                    self._running_prompt_id = None
            if not self.closed and self.session.status == "active":
                await self._set_status("idle")

    async def _queued_prompts(self) -> list[Prompt]:
        """The queued prompts, oldest first (under ``_lock``)."""
        if self._queued is None:
            self._queued = await self._s.store.prompts.for_session(self.session.id, ("queued",))
        return self._queued

    async def _start(self, prompt: Prompt) -> bool:
        """Mark the prompt running with its ``prompt-started`` and launch its agent run
        (``_current``); False, with nothing launched, when it is no longer queued.

        The run's first model request goes out while ``prompt-started`` is written, not after:
        the run writes nothing (its host waits) until that is stored, and is cancelled if it
        is not. The request is what a prompt waits for longest before anything happens."""
        started = PromptStarted(
            session_id=self.session.id,
            prompt_id=prompt.id,
            model=prompt.model or self.session.model,
            effort=self._effort(prompt.model, prompt.effort),
        )
        move = PromptMove(prompt.id, "running", only_if=("queued",))
        # Running from before its ``prompt-started`` is out: a stop sent on seeing it counts.
        self._stop_requested = False
        self._running_prompt_id = prompt.id
        stored: asyncio.Future[Event | None] = asyncio.ensure_future(
            self.commit(Change(started, prompt=move))
        )
        # A box replaced since the last prompt (lost, or stopped idle) is said at the head of
        # the prompt, so it stays in the conversation with the turn it explains; decided
        # before the next box starts. That box boots (or a pooled one is claimed) from now, in
        # parallel with building the run and its first model request. A start refused below
        # leaves a warm box, which the next prompt uses or the idle reaper stops.
        note = await self.sandbox.replacement_note()
        self.sandbox.reset_failure()
        self.sandbox.warm()
        try:
            try:
                await self._launch(prompt, stored, note)
                if await asyncio.shield(stored) is not None:
                    return True
            finally:
                if not stored.done():  # launching failed: the start's outcome still counts
                    with contextlib.suppress(Exception):
                        await stored
        except BaseException:
            await self._abandon_run()
            self._running_prompt_id = None
            raise
        await self._abandon_run()
        self._running_prompt_id = None
        return False

    async def _abandon_run(self) -> None:
        """Cancel a run launched for a prompt that did not start (it wrote nothing)."""
        task, self._current = self._current, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _launch(
        self, prompt: Prompt, started: asyncio.Future[Event | None], note: str | None
    ) -> None:
        """Create the agent run of ``prompt`` as ``_current``; its host waits for ``started``
        (the stored ``prompt-started``) before it writes or touches the sandbox."""
        model = prompt.model or self.session.model
        effort = self._effort(prompt.model, prompt.effort)
        # The agent loop loads pydantic-ai: the server imports it after it listens (preload),
        # and no other thread may import it at the same time.
        await self._s.models.loaded()
        from openinspect.agent.conversation import Conversation
        from openinspect.agent.runner import Agents, PromptRun, run_prompt

        if self._agents is None:
            self._agents = Agents()
        if self._conversation is None:  # kept up to date by every run after this one
            self._conversation = Conversation(
                await self._s.store.sessions.load_conversation(self.session.id)
            )
        forked = await fork_note(self._s.store, self.session)
        if forked is not None:  # a fork's first prompt: where its history and code come from
            note = forked if note is None else f"{forked}\n\n{note}"
        run = PromptRun(
            session_id=self.session.id,
            prompt_id=prompt.id,
            content=prompt.content if note is None else f"{note}\n\n{prompt.content}",
            model_id=model,
            effort=effort,
            branch=self.session.branch,
        )
        conversation, agents = self._conversation, self._agents

        async def run_it() -> RunOutcome:
            # Inside the run's task: the skills and a ready box's AGENTS.md are read while
            # ``prompt-started`` is written, not before.
            return await run_prompt(
                run,
                _Host(self, prompt, started),
                conversation,
                self._s.models,
                self._s.settings.agent,
                agents,
                guidance=await self._guidance(),
                spend=functools.partial(self.spend.for_run, prompt.author.id, prompt.id),
            )

        self._current = asyncio.create_task(run_it(), name=f"prompt {prompt.id}")

    async def _guidance(self) -> Guidance:
        """The repo's instructions (read now if the box is ready, else by the run's first tool
        call) and the team's skills, for a prompt run."""
        from openinspect.agent.guidance import Guidance, SkillEntry

        agent = self._s.settings.agent
        skills = self._s.store.skills
        repo_id = self.session.repo_id

        async def load(name: str) -> str | None:
            found = await skills.get(repo_id, name)
            return None if found is None else found.body

        guidance = Guidance(
            limit_chars=agent.instructions_chars, loader=load, skill_chars=agent.skill_chars
        )

        async def list_skills() -> None:
            guidance.skills = [SkillEntry(*entry) for entry in await skills.entries(repo_id)]

        box = self.sandbox.connection_if_ready()
        cached = self._root_instructions
        if box is not None and cached is not None and cached[0] is box:
            guidance.root = cached[1]  # read when the last prompt ended, on this box
            await list_skills()
        elif box is not None:  # the store and the box at once: both before the first request
            await asyncio.gather(list_skills(), guidance.read_root(box))
        else:
            await list_skills()
        return guidance

    async def _remember_root_instructions(self) -> None:
        """Read the root instruction files as the prompt left them, for the next prompt."""
        from openinspect.agent.guidance import Guidance

        box = self.sandbox.connection_if_ready()
        if box is None:
            self._root_instructions = None
            return
        fresh = Guidance(limit_chars=self._s.settings.agent.instructions_chars)
        await fresh.read_root(box)
        self._root_instructions = (box, fresh.root or "")

    async def _run_prompt(self, prompt: Prompt, started: float) -> None:
        """See the run ``_start`` launched to its end, and record how it ended."""
        assert self._current is not None
        if self._stop_requested:  # asked while the prompt was starting
            self._current.cancel()
        status: PromptStatus
        error: ErrorInfo | None = None
        try:
            outcome = await asyncio.shield(self._current)
            status = "success" if outcome.status == "success" else "error"
            error = outcome.error
        except asyncio.CancelledError:
            if not self._stop_requested:  # the server is shutting down: leave it "running"
                self._current.cancel()
                raise
            with contextlib.suppress(asyncio.CancelledError):
                await self._current
            status = "stopped"
        except Exception as exc:  # a bug: report it on the prompt rather than kill the queue
            log.exception("prompt %s crashed", prompt.id)
            status, error = "error", ErrorInfo(code="internal", message=repr(exc))
        finally:
            self._current = None
        if self.closed:  # the lease was lost meanwhile: the new owner ends the prompt
            return
        git_error = await self._commit_and_push(prompt)
        if git_error is not None and status == "success":
            status, error = "error", git_error
        elif git_error is not None:  # the prompt's own failure says more; this one is added
            await self.emit(
                WarningEvent(
                    session_id=self.session.id,
                    prompt_id=prompt.id,
                    code=git_error.code,
                    message=git_error.message,
                )
            )
        finished = await self.commit(
            Change(
                PromptFinished(
                    session_id=self.session.id,
                    prompt_id=prompt.id,
                    status=status,
                    error=error,
                    duration_ms=int((time.monotonic() - started) * 1000),
                ),
                prompt=PromptMove(
                    prompt.id,
                    status,
                    only_if=("running",),
                    error_code=error.code if error else None,
                    error_message=error.message if error else None,
                ),
            )
        )
        if finished is None:
            log.warning("prompt %s was no longer running when it ended: kept as it is", prompt.id)
        # Still in the queue runner: the next prompt starts once the box's state is captured.
        async with self._git_lock:
            await self.sandbox.snapshot("prompt")
        await self._remember_root_instructions()
        self.last_work_at = time.monotonic()

    @property
    def running_prompt_id(self) -> str | None:
        """The prompt being run now, if any (the git proxy tags pushes with it)."""
        return self._running_prompt_id

    async def _commit_and_push(self, prompt: Prompt) -> ErrorInfo | None:
        """Commit what the prompt left in the working tree, then push the branch through the
        git proxy (which records the ``git-push``) when there is a new commit. A failure is the
        prompt's (``commit_failed`` / ``push_failed``, with git's reason); the commit stays in
        the sandbox and the next prompt's push carries it."""
        box = self.sandbox.connection_if_ready()
        if box is None:
            return None
        code, hint = "commit_failed", COMMIT_FAILED_HINT
        try:
            async with self._git_lock:
                await self._commit(box, prompt)
                code, hint = "push_failed", PUSH_FAILED_HINT
                await self._push(box)
        except (GitError, SandboxError) as exc:
            log.info("session %s: %s: %s", self.session.id, code, exc)
            return ErrorInfo(code=code, message=clip_git_output(str(exc)), hint=hint)
        return None

    async def _push(self, box: SandboxConnection) -> str | None:
        """Push the session branch if the sandbox has a commit the origin lacks."""
        branch = self.session.branch
        return await push_in_sandbox(
            box,
            branch,
            base_branch=self.session.base_branch,
            pushed_sha=await self._s.store.branches.head(self.session.id, branch),
        )

    async def _commit(self, box: SandboxConnection, prompt: Prompt) -> None:
        result = await commit_in_sandbox(
            box,
            prompt.author,
            commit_message(prompt.content),
            max_file_bytes=self._s.settings.sessions.max_commit_file_bytes,
        )
        if result.skipped:
            names = ", ".join(f"{f.path} ({f.size_bytes:,} bytes)" for f in result.skipped)
            limit = self._s.settings.sessions.max_commit_file_bytes
            await self.emit(
                WarningEvent(
                    session_id=self.session.id,
                    prompt_id=prompt.id,
                    code="files_too_large",
                    message=clip_git_output(f"Not committed, larger than {limit:,} bytes: {names}"),
                )
            )
        commit = result.commit
        if commit is not None:
            await self.emit(
                GitCommit(
                    session_id=self.session.id,
                    prompt_id=prompt.id,
                    sha=commit.sha,
                    branch=self.session.branch,
                    message=commit.message,
                    author=prompt.author,
                    files_changed=commit.files_changed,
                )
            )

    async def open_pull_request(
        self, prompt: Prompt | None, user: User, *, title: str, body: str, draft: bool
    ) -> PullRequestRecord:
        """Commit and push what is in the sandbox (when one is up), then open or update the
        session branch's pull request as ``user``. A session on an existing branch has its
        pull request already: asking for one is refused (it would rewrite that one's text)."""
        if self.session.works_on_existing_branch:
            raise InvalidInput(
                f"This session works on the branch {self.session.branch} of an existing pull "
                "request: its commits are pushed there, and no other pull request is opened",
                hint="Say what you changed in your answer instead",
            )
        self._s.pulls.repo_of(self.session)  # a clear error before any git work
        box = self.sandbox.connection_if_ready()
        if box is not None:
            async with self._git_lock:
                if prompt is not None:
                    await self._commit(box, prompt)
                await self._push(box)
        elif not await self._s.store.branches.names(self.session.id):
            raise SessionNotPromptable(
                "Nothing was pushed from this session yet, so there is no branch to open a "
                "pull request from",
                hint="Send a prompt that changes the code first",
            )
        return await self._s.pulls.open_or_update(
            self.session,
            user,
            title=title,
            body=body,
            draft=draft,
            prompt_id=prompt.id if prompt else None,
        )


class _Host:
    """The agent's view of the session it runs in."""

    def __init__(
        self, actor: SessionActor, prompt: Prompt, started: asyncio.Future[Event | None]
    ) -> None:
        self._actor = actor
        self._prompt = prompt
        self._started = started
        self._start_stored = False
        self._reviews = 0

    async def _wait_started(self) -> None:
        """Wait until the prompt's ``prompt-started`` is stored: nothing of a run may come
        before it. If it was not stored, the run is being cancelled; this ends it first."""
        if self._start_stored:
            return
        if await asyncio.shield(self._started) is None:
            raise asyncio.CancelledError
        self._start_stored = True

    async def sandbox(self) -> SandboxConnection:
        await self._wait_started()
        return await self._actor.sandbox.ready()

    async def emit(self, event: Event) -> None:
        await self._wait_started()
        if isinstance(event, Usage):  # adds its cost to the session's, once per response
            await self._actor.commit(Change(event))
        else:
            await self._actor.emit(event)

    async def publish(self, event: Event) -> None:
        await self._wait_started()
        await self._actor._s.events.publish(event)

    async def save_conversation(self, start: int, rows: Sequence[str]) -> None:
        await self._wait_started()
        await self._actor._s.store.sessions.save_conversation(
            self._actor.session.id, start, rows, self._prompt.id
        )

    async def mcp_servers(self) -> list[McpServer]:
        """The enabled MCP servers of the session's repo, headers opened: each header value is
        added to the session's redaction before anything can print it."""
        await self._wait_started()
        actor = self._actor
        servers = await actor._s.store.mcp_servers.for_repo(actor.session.repo_id)
        redaction = actor._s.redaction
        if redaction is not None:
            for s in servers:
                for header, value in s.headers.items():
                    label = f"MCP_{s.name}_{header}"
                    # The whole value, and the token of "Bearer <token>" alone.
                    for part in {value, value.partition(" ")[2]}:
                        if len(part) >= 8:
                            redaction.track(actor.session.id, {label: part})
        return servers

    async def _redactor(self) -> Redactor:
        """The session's secret values: kept out of what the agent has posted to GitHub."""
        redaction = self._actor._s.redaction
        return EMPTY if redaction is None else await redaction.of_session(self._actor.session.id)

    async def open_pull_request(self, title: str, body: str, draft: bool) -> str:
        await self._wait_started()
        redactor = await self._redactor()
        title, body = redactor.redact(title), redactor.redact(body)
        actor = self._actor
        user = await actor._s.store.users.get(self._prompt.author.id)
        if user is None:
            raise SessionNotPromptable("The person who asked for this prompt no longer exists")
        record = await actor.open_pull_request(
            self._prompt, user, title=title, body=body, draft=draft
        )
        return f"Pull request #{record.number} ({record.state}): {record.url}"

    async def submit_review(self, review: dict[str, Any]) -> str:
        await self._wait_started()
        review = (await self._redactor()).redact_tree(review)
        from openinspect.integrations.github.reviews import ReviewPoster, submit_review

        actor = self._actor
        github = actor._s.pulls.github
        if github is None:
            raise NotConfigured("GitHub is not configured on this server, so there is no review")
        self._reviews += 1
        poster = ReviewPoster(actor._s.settings, actor._s.store, actor._s.events.bus, github)
        return await submit_review(poster, actor.session, self._prompt.id, self._reviews, review)

    async def notify(self, text: str, channel: str | None) -> str:
        await self._wait_started()
        actor = self._actor
        slack = actor._s.settings.slack
        if not slack.enabled:
            raise NotConfigured("Slack is not set up on this server, so there is no one to notify")
        if len(text) > NOTIFY_TEXT_MAX_CHARS:
            raise InvalidInput(
                f"The text has {len(text)} characters; the limit is {NOTIFY_TEXT_MAX_CHARS}",
                hint="Say it shorter",
            )
        if not text.strip():
            raise InvalidInput("The text is empty")
        if channel is not None:
            if channel not in slack.notify_channels:
                raise InvalidInput(
                    "That channel is not one this server lets the agent post to",
                    hint="Leave channel out to post in the session's own Slack thread",
                )
            where = f"channel {channel}"
        else:
            if await actor._s.store.slack_threads.by_session(actor.session.id) is None:
                raise NotConfigured(
                    "This session has no Slack thread, and no channel was named",
                    hint="Name one of the channels the server allows, or do without",
                )
            where = "the session's Slack thread"
        session_id, prompt_id = actor.session.id, self._prompt.id
        event = Notify(session_id=session_id, prompt_id=prompt_id, text=text, channel=channel)
        await actor.emit(event)
        return f"Sent to {where}."
