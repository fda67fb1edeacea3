"""Session routes: thin — schema in, a command to ``sessions.commands`` (or a read), schema out."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from openinspect.api.deps import CurrentUser, State, visible_session
from openinspect.api.errors import documented
from openinspect.api.schemas import (
    IDEMPOTENCY_KEY_MAX,
    SEQ_MAX,
    DiffStat,
    EventPage,
    ForkCreate,
    LastPrompt,
    PromptCreate,
    PullRequestCreate,
    PullRequestList,
    PullSummary,
    SessionCreate,
    SessionCreated,
    SessionDiffOut,
    SessionList,
    SessionOut,
    SessionPatch,
    StopResult,
    WsToken,
    event_shown_to,
    session_shown_to,
)
from openinspect.domain.commands import (
    ID_MAX,
    CancelPrompt,
    ForkSession,
    OpenPullRequest,
    StartSession,
    Stop,
    SubmitPrompt,
    UpdateSession,
)
from openinspect.domain.events import dump_event
from openinspect.domain.models import (
    FINISHED_PROMPT_STATUSES,
    Author,
    Prompt,
    PullRequestRecord,
    SessionOrigin,
)
from openinspect.errors import InvalidInput
from openinspect.people.roles import is_admin
from openinspect.sessions.commands import client_origin

PAGE_DEFAULT = 200
PAGE_MAX = 500
router = APIRouter(
    prefix="/api/sessions",
    tags=["sessions"],
    responses=documented(401, 404, 422),
    dependencies=[Depends(visible_session)],  # members reach only their own sessions
)
REST_ORIGIN: SessionOrigin = "api"
"""The door of the commands on an existing session that come through REST."""
# Operations that reach GitHub (the access check, pull requests) can meet its failures.
_GITHUB_FAILURES = (502, 503)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "A retry of an earlier create (same Idempotency-Key and body)."},
        **documented(403, 409, 413, 429, *_GITHUB_FAILURES),
    },
)
async def create_session(
    body: SessionCreate,
    user: CurrentUser,
    state: State,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX,
            description="Makes a retried create return the session the first one made.",
        ),
    ] = None,
) -> SessionCreated:
    """Create a session, with an optional first prompt. A refused first prompt (too long,
    empty) is refused before the session is made, so it leaves nothing behind."""
    command = StartSession(
        **body.model_dump(exclude={"origin", "idempotency_key"}),
        idempotency_key=_one_key(idempotency_key, body.idempotency_key),
    )
    started = await state.commands.handle(user, command, origin=client_origin(body.origin))
    if started.replayed:
        response.status_code = status.HTTP_200_OK
    return SessionCreated(session=session_shown_to(user, started.session), prompt=started.prompt)


def _one_key(header: str | None, field: str | None) -> str | None:
    if header is not None and field is not None and header != field:
        raise InvalidInput(
            "The Idempotency-Key header and the idempotency_key field differ",
            hint="Send the key once, in the header or in the body",
        )
    return header if header is not None else field


@router.get("")
async def list_sessions(
    user: CurrentUser,
    state: State,
    mine: bool = False,
    archived: Annotated[
        bool, Query(description="List the archived sessions instead of the others.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SessionList:
    sessions = await state.store.sessions.list(
        creator_id=user.id if mine else None,
        participant_id=None if is_admin(user) else user.id,
        archived=archived,
        limit=limit,
    )
    ids = [s.id for s in sessions]
    creators = await state.store.users.get_many(s.creator_id for s in sessions)
    outcomes = await state.store.prompts.last_outcomes(ids)
    repo_ids = {s.repo_id for s in sessions if s.repo_id}
    repos = {r.id: r.name for r in await state.store.repos.list() if r.id in repo_ids}
    diffs = await state.manager.diffs.for_list(sessions)
    pulls = await state.store.pulls.newest_for_sessions(ids)
    return SessionList(
        sessions=[session_shown_to(user, s) for s in sessions],
        creators={uid: Author.of(u) for uid, u in creators.items()},
        last_prompts={
            sid: LastPrompt(status=status, error_code=code, error_message=_first_line(message))
            for sid, (status, code, message) in outcomes.items()
        },
        repo_names=repos,
        diff_stats={
            sid: DiffStat(
                files=len(d.files),
                additions=sum(f.additions for f in d.files),
                deletions=sum(f.deletions for f in d.files),
            )
            for sid, d in diffs.items()
            if d.head_sha is not None
        },
        pulls={
            sid: PullSummary(number=p.number, url=p.url, state=p.state, draft=p.draft)
            for sid, p in pulls.items()
        },
    )


LIST_REASON_MAX_CHARS = 200
"""A failed prompt's reason in the session list: its first line, cut to this length."""


def _first_line(message: str | None) -> str | None:
    if not message:
        return None
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line[:LIST_REASON_MAX_CHARS] or None


@router.get("/{session_id}")
async def get_session(session_id: str, user: CurrentUser, state: State) -> SessionOut:
    session = await state.manager.get(session_id)
    queue = await state.store.prompts.unfinished(session_id)
    return SessionOut(session=session_shown_to(user, session), queue=queue)


@router.post(
    "/{session_id}/fork",
    status_code=status.HTTP_201_CREATED,
    responses=documented(403, 429, *_GITHUB_FAILURES),
)
async def fork_session(
    session_id: str, body: ForkCreate, user: CurrentUser, state: State
) -> SessionCreated:
    """Start a new session (the caller's) from this one at its event ``at_seq``: the agent's
    conversation up to there, and a branch of its own at the commit pushed by then."""
    command = ForkSession(session_id=session_id, at_seq=body.at_seq, title=body.title)
    session = await state.commands.handle(user, command, origin=REST_ORIGIN)
    return SessionCreated(session=session_shown_to(user, session))


@router.patch("/{session_id}", responses=documented(409))
async def patch_session(
    session_id: str, body: SessionPatch, user: CurrentUser, state: State
) -> SessionOut:
    """Rename, archive or unarchive a session; each change is a ``session-updated`` event."""
    command = UpdateSession(session_id=session_id, title=body.title, archived=body.archived)
    session = await state.commands.handle(user, command, origin=REST_ORIGIN)
    queue = await state.store.prompts.unfinished(session_id)
    return SessionOut(session=session_shown_to(user, session), queue=queue)


@router.post(
    "/{session_id}/prompts",
    status_code=status.HTTP_202_ACCEPTED,
    responses=documented(409, 413, 429),
)
async def post_prompt(
    session_id: str, body: PromptCreate, user: CurrentUser, state: State
) -> Prompt:
    command = SubmitPrompt(session_id=session_id, **body.model_dump())
    return await state.commands.handle(user, command, origin=REST_ORIGIN)


@router.post("/{session_id}/prompts/{prompt_id}/cancel", responses=documented(409))
async def cancel_prompt(
    session_id: str,
    prompt_id: Annotated[str, Path(max_length=ID_MAX)],
    user: CurrentUser,
    state: State,
) -> Prompt:
    command = CancelPrompt(session_id=session_id, prompt_id=prompt_id)
    return await state.commands.handle(user, command, origin=REST_ORIGIN)


@router.post("/{session_id}/stop", responses=documented(503))
async def stop(session_id: str, user: CurrentUser, state: State) -> StopResult:
    command = Stop(session_id=session_id)
    return StopResult(stopped=await state.commands.handle(user, command, origin=REST_ORIGIN))


@router.get("/{session_id}/events")
async def page_events(
    session_id: str,
    user: CurrentUser,
    state: State,
    before_seq: Annotated[int | None, Query(ge=1, le=SEQ_MAX)] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
) -> EventPage:
    """Durable events, oldest first: the page after ``after_seq``, or the newest page before
    ``before_seq`` (the newest overall when neither is given)."""
    await state.manager.get(session_id)
    events = state.store.events
    if after_seq is not None:
        page = await events.after(session_id, after_seq, limit + 1)
        more, page = len(page) > limit, page[:limit]
    else:
        page = await events.before(session_id, before_seq, limit + 1)
        more, page = len(page) > limit, page[-limit:]
    return EventPage(events=[event_shown_to(user, dump_event(e)) for e in page], has_more=more)


@router.get("/{session_id}/diff", responses=documented(502, 503))
async def get_diff(session_id: str, user: CurrentUser, state: State) -> SessionDiffOut:
    """The session branch's changes against its base (``base...branch``), per file. A repo
    secret's value the agent wrote into a file shows as ``[secret:NAME]`` here (it is on the
    branch as written)."""
    session = await state.manager.get(session_id)
    diff = await state.manager.diffs.get(session)
    finished = await state.store.prompts.count(session_id, FINISHED_PROMPT_STATUSES)
    shown = (await state.redaction.of_session(session_id)).redact_tree(asdict(diff))
    return SessionDiffOut.model_validate({**shown, "prompts_finished": finished})


@router.post("/{session_id}/ws-token")
async def ws_token(session_id: str, request: Request, user: CurrentUser, state: State) -> WsToken:
    await state.manager.get(session_id)
    # Bound to the API token of this request: revoking it voids the WebSocket token too.
    token, expires = state.ws_tokens.mint(session_id, user.id, request.state.token_id)
    scheme = "wss" if request.url.scheme == "https" else "ws"
    url = f"{scheme}://{request.url.netloc}/api/sessions/{session_id}/ws"
    return WsToken(token=token, expires_at=expires, url=url)


@router.post(
    "/{session_id}/pull-request",
    responses=documented(403, 409, 413, 429, *_GITHUB_FAILURES),
)
async def open_pull_request(
    session_id: str, body: PullRequestCreate, user: CurrentUser, state: State
) -> PullRequestRecord:
    """Open the session branch's pull request as the caller (or update the open one)."""
    command = OpenPullRequest(session_id=session_id, **body.model_dump())
    return await state.commands.handle(user, command, origin=REST_ORIGIN)


@router.get("/{session_id}/pull-requests")
async def list_pull_requests(session_id: str, user: CurrentUser, state: State) -> PullRequestList:
    await state.manager.get(session_id)
    session = await state.manager.get(session_id)
    reason = state.pulls.cannot_open_reason(session)
    return PullRequestList(
        pull_requests=await state.store.pulls.for_session(session_id),
        can_open=reason is None,
        cannot_open_reason=reason,
    )
