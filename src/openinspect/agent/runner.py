"""The builtin harness: one prompt → one pydantic-ai agent run, streamed into session events.

Inference starts at once; tools wait for the sandbox (see ``tools``). The conversation is saved
after every step and from a ``finally``, so a crash, a stop or an error never loses what the model
already said; each save writes only the messages that are new (``conversation``). Step, time,
token and cost limits are checked in one place, ``Budget.check``; the session's spend limits
(``sessions.spend``) are asked before each model request after the first, through ``spend``.
The repo's instructions and the team's skills (``guidance``) are added to every request's
instructions as they are known.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic_ai import Agent, RunContext, Tool
from pydantic_ai.exceptions import (
    AgentRunError,
    ModelAPIError,
    ModelConnectionError,
    ModelHTTPError,
    UnexpectedModelBehavior,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ToolCallPart,
)
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset
from pydantic_ai.usage import UsageLimits

from openinspect.agent.conversation import Conversation
from openinspect.agent.guidance import Guidance
from openinspect.agent.live_output import RateBudget
from openinspect.agent.models import ModelRegistry
from openinspect.agent.tools import ToolDeps, ToolHost, builtin_tools
from openinspect.domain.events import (
    AgentText,
    AgentTextDelta,
    AgentThinking,
    ErrorInfo,
    Usage,
    WarningEvent,
)
from openinspect.errors import LimitExceeded, ModelError, ModelUnreachable, OpenInspectError
from openinspect.settings import AgentSettings

INSTRUCTIONS = """\
You are openinspect, a coding agent working in a sandbox on a checkout of the user's repository.
The repository is your working directory ({repo_dir}), on the branch {branch}.
Use the tools to inspect, edit and test the code. Prefer small, verifiable changes, run the tests
that cover what you changed, and say briefly what you did and how you checked it.
Every change you leave in the working tree is committed for you under the name of the person who
asked, and pushed to {branch}, when your turn ends; you may also commit and `git push` yourself
(to {branch} or a new branch under openinspect/). When asked for a pull request, use the
create_pull_request tool. To tell the people following the session in Slack something they
should not miss (a question, a blocker, the result), use the notify tool.
"""


@dataclass
class Budget:
    """Step, wall-time and cost limits of one prompt, checked in one place."""

    max_steps: int
    max_wall_s: float
    max_cost_usd: float
    max_tokens: int = 20_000_000
    started: float = field(default_factory=time.monotonic)
    steps: int = 0
    cost_usd: float = 0.0
    tokens: int = 0

    def check(self) -> None:
        if self.tokens >= self.max_tokens:
            raise LimitExceeded(
                "token_limit",
                f"Stopped after {self.tokens:,} tokens (limit {self.max_tokens:,} per prompt)",
                hint="Split the work into smaller prompts, or raise "
                "OPENINSPECT_AGENT__MAX_TOKENS_PER_PROMPT",
            )
        if self.steps >= self.max_steps:
            raise LimitExceeded(
                "step_limit", f"Stopped after {self.steps} model steps (limit {self.max_steps})"
            )
        elapsed = time.monotonic() - self.started
        if elapsed >= self.max_wall_s:
            raise LimitExceeded(
                "time_limit", f"Stopped after {elapsed:.0f} s (limit {self.max_wall_s:g} s)"
            )
        if self.cost_usd >= self.max_cost_usd:
            raise LimitExceeded(
                "cost_limit",
                f"Stopped after spending ${self.cost_usd:.4f} (limit ${self.max_cost_usd:g})",
            )

    def remaining_s(self) -> float:
        return max(0.0, self.max_wall_s - (time.monotonic() - self.started))


@dataclass
class PromptRun:
    session_id: str
    prompt_id: str
    content: str
    model_id: str
    effort: str | None
    branch: str
    repo_dir: str = "/workspace/repo"


@dataclass
class RunOutcome:
    status: str  # "success" | "error"
    error: ErrorInfo | None
    cost_usd: float


class AgentHost(ToolHost, Protocol):
    """What a prompt run needs from its session, beyond the tools' needs."""

    async def save_conversation(self, start: int, rows: Sequence[str]) -> None:
        """Store ``rows`` (one JSON message each) as the conversation's messages from position
        ``start`` on, dropping any stored after them."""

    # Optional: ``async def mcp_servers(self) -> list[McpServer]``, the enabled MCP servers of
    # the session's repo with their headers opened (and added to the session's redaction).


SpendCheck = Callable[[], Awaitable[LimitExceeded | None]]
"""Asks the session's spend limits; a ``LimitExceeded`` (``spend_limit``) when one is reached."""


def _guidance(ctx: RunContext[ToolDeps]) -> str:
    """The repo's instructions and the skills list, as known at this request."""
    return ctx.deps.guidance.instructions()


@functools.cache
def _tools() -> list[Tool[ToolDeps]]:
    """The builtin tools, built once per process: building one makes its JSON schema, which
    took tens of milliseconds for the set, on every prompt."""
    return builtin_tools()


class Agents:
    """A session's agents, one per model (and instructions), built on its first prompt and
    reused by the next ones; pydantic-ai agents hold no state of a run."""

    MAX = 4

    def __init__(self) -> None:
        self._built: dict[tuple[str, str], Agent[ToolDeps, str]] = {}

    def get(self, registry: ModelRegistry, run: PromptRun) -> Agent[ToolDeps, str]:
        instructions = INSTRUCTIONS.format(repo_dir=run.repo_dir, branch=run.branch)
        key = (run.model_id, instructions)
        agent = self._built.get(key)
        if agent is None:
            if len(self._built) >= self.MAX:  # a session switching models often stays small
                self._built.clear()
            agent = self._built[key] = Agent(
                registry.build(run.model_id),
                deps_type=ToolDeps,
                tools=_tools(),
                instructions=[instructions, _guidance],
            )
        return agent


class Emitter:
    """Turns model output into session events: ephemeral deltas while streaming, one durable
    event per text or thinking part when the response is complete."""

    def __init__(self, run: PromptRun, host: AgentHost) -> None:
        self._run = run
        self._host = host

    def part_id(self, step: int, index: int) -> str:
        return f"{self._run.prompt_id}.{step}.{index}"

    async def delta(self, step: int, index: int, text: str) -> None:
        if text:
            await self._host.publish(
                AgentTextDelta(
                    session_id=self._run.session_id,
                    prompt_id=self._run.prompt_id,
                    part_id=self.part_id(step, index),
                    delta=text,
                )
            )

    async def response(self, step: int, response: ModelResponse) -> None:
        common = {"session_id": self._run.session_id, "prompt_id": self._run.prompt_id}
        for index, part in enumerate(response.parts):
            if isinstance(part, TextPart) and part.content:
                await self._host.emit(
                    AgentText(**common, part_id=self.part_id(step, index), text=part.content)
                )
            elif isinstance(part, ThinkingPart) and part.content:
                await self._host.emit(
                    AgentThinking(**common, part_id=self.part_id(step, index), text=part.content)
                )


async def run_prompt(
    run: PromptRun,
    host: AgentHost,
    conversation: Conversation,
    registry: ModelRegistry,
    settings: AgentSettings,
    agents: Agents | None = None,
    *,
    guidance: Guidance | None = None,
    spend: SpendCheck | None = None,
) -> RunOutcome:
    """Run one prompt to the end, continuing ``conversation`` (and keeping it up to date with
    the store), with an agent from ``agents`` (the session's, kept between its prompts).
    ``guidance``: the repo's instructions and skills; ``spend``: the session's spend limits.
    Cancellation (stop) propagates after the history is saved."""
    budget = Budget(
        settings.max_steps,
        settings.max_wall_s,
        settings.max_cost_usd,
        settings.max_tokens_per_prompt,
    )
    emitter = Emitter(run, host)
    agent = (agents or Agents()).get(registry, run)
    deps = ToolDeps(
        run.session_id,
        run.prompt_id,
        host,
        settings.tool_output_chars,
        settings.bash_timeout_s,
        settings.bash_max_timeout_s,
        settings.tool_event_output_chars,
        settings.live_output_interval_ms / 1000,
        RateBudget(settings.live_output_chars_per_s),
        guidance if guidance is not None else Guidance(),
    )
    history = conversation.history()
    messages: list[ModelMessage] = list(history)

    async def save() -> None:
        await conversation.save(messages, host.save_conversation)

    try:
        async with asyncio.timeout(budget.remaining_s()), _mcp(host, run, settings, budget) as mcp:
            await _drive(
                agent,
                run,
                deps,
                history,
                registry,
                budget,
                emitter,
                host,
                messages,
                save,
                spend,
                mcp,
            )
        return RunOutcome("success", None, budget.cost_usd)
    except TimeoutError:
        exc = LimitExceeded("time_limit", f"Stopped after the {settings.max_wall_s:g} s limit")
        return RunOutcome(
            "error",
            ErrorInfo(code=exc.limit_code, message=exc.message, hint=exc.hint),
            budget.cost_usd,
        )
    except LimitExceeded as exc:
        return RunOutcome(
            "error",
            ErrorInfo(code=exc.limit_code, message=exc.message, hint=exc.hint),
            budget.cost_usd,
        )
    except OpenInspectError as exc:
        return RunOutcome(
            "error", ErrorInfo(code=exc.code, message=exc.message, hint=exc.hint), budget.cost_usd
        )
    except (ModelAPIError, UnexpectedModelBehavior, AgentRunError) as exc:
        err = model_failure(registry, run.model_id, exc)
        return RunOutcome(
            "error", ErrorInfo(code=err.code, message=err.message, hint=err.hint), budget.cost_usd
        )
    finally:
        await save()


def _mcp(
    host: AgentHost, run: PromptRun, settings: AgentSettings, budget: Budget
) -> contextlib.AbstractAsyncContextManager[list[FunctionToolset[ToolDeps]]]:
    """The prompt's MCP tools (``agent.mcp``): none for a host that has no MCP servers."""
    servers: Callable[[], Awaitable[list[Any]]] | None = getattr(host, "mcp_servers", None)
    if servers is None:
        return contextlib.nullcontext([])

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[list[FunctionToolset[ToolDeps]]]:
        async def warn(code: str, message: str) -> None:
            await host.emit(
                WarningEvent(
                    session_id=run.session_id, prompt_id=run.prompt_id, code=code, message=message
                )
            )

        try:
            configured = await servers()
        except OpenInspectError as exc:
            await warn("mcp_servers_unavailable", f"No MCP tools this prompt: {exc.message}")
            configured = []
        if not configured:
            yield []
            return
        # Only now: the SDK takes seconds to import, which no prompt without MCP waits for.
        from openinspect.agent.mcp import mcp_toolsets

        async with mcp_toolsets(
            configured,
            host.sandbox,
            warn,
            connect_timeout_s=settings.mcp_connect_timeout_s,
            call_timeout_s=settings.mcp_call_timeout_s,
            life_s=max(1.0, budget.remaining_s()),
            taken=frozenset(t.name for t in _tools()),
        ) as toolsets:
            yield toolsets

    return opened()


# Provider setting names, for the hint on where a URL or key comes from.
_SETTING = {
    "anthropic": "OPENINSPECT_MODELS__ANTHROPIC_BASE_URL",
    "openai": "OPENINSPECT_MODELS__OPENAI_BASE_URL",
    "openai-compatible": "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL",
}
_KEY_SETTING = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "openai-compatible": "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_API_KEY",
}
_AUTH_STATUSES = (401, 403)


def model_failure(registry: ModelRegistry, model_id: str, exc: Exception) -> ModelError:
    """A model failure in words a person can act on: an unreachable server is named with its
    provider and URL and the setting that points there; a refused key says which key."""
    provider = model_id.partition(":")[0]
    url = registry.base_url(model_id)
    if isinstance(exc, ModelConnectionError):
        return ModelUnreachable(
            f"Could not connect to the {provider} server at {url} for {model_id}",
            hint=f"Is the server at {url} running and reachable from the openinspect server? "
            f"Check {_SETTING.get(provider, 'the model settings')}",
        )
    if isinstance(exc, ModelHTTPError) and exc.status_code in _AUTH_STATUSES:
        return ModelError(
            f"The {provider} server at {url} refused the API key (HTTP {exc.status_code})",
            hint=f"Check {_KEY_SETTING.get(provider, 'the API key')}",
        )
    return ModelError(f"The model request failed: {exc}")


async def _drive(
    agent: Agent[ToolDeps, str],
    run: PromptRun,
    deps: ToolDeps,
    history: list[ModelMessage],
    registry: ModelRegistry,
    budget: Budget,
    emitter: Emitter,
    host: AgentHost,
    messages: list[ModelMessage],
    save: Callable[[], Awaitable[None]],
    spend: SpendCheck | None = None,
    toolsets: Sequence[AbstractToolset[ToolDeps]] = (),
) -> None:
    # Our Budget enforces the step limit; pydantic-ai's own request limit (50 by default) must
    # not end a run first.
    limits = UsageLimits(request_limit=budget.max_steps + 1)
    async with agent.iter(
        run.content,
        deps=deps,
        message_history=history,
        model_settings=registry.model_settings(run.model_id, run.effort, session_id=run.session_id),
        usage_limits=limits,
        toolsets=toolsets or None,
    ) as agent_run:
        async for node in agent_run:
            if Agent.is_model_request_node(node):
                step = budget.steps
                async with node.stream(agent_run.ctx) as stream:
                    async for event in stream:
                        if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                            await emitter.delta(step, event.index, event.part.content)
                        elif isinstance(event, PartDeltaEvent) and isinstance(
                            event.delta, TextPartDelta
                        ):
                            await emitter.delta(step, event.index, event.delta.content_delta)
            elif Agent.is_call_tools_node(node):
                response = node.model_response
                answered = budget.steps
                await emitter.response(answered, response)
                budget.steps += 1
                usage = response.usage
                cost = registry.cost_usd(
                    run.model_id, usage.cost, usage.input_tokens, usage.output_tokens
                )
                budget.cost_usd += cost
                budget.tokens += usage.input_tokens + usage.output_tokens
                # The store adds the cost to the session's with the event (keyed by the step:
                # counted once) and sets its total.
                await host.emit(
                    Usage(
                        session_id=run.session_id,
                        prompt_id=run.prompt_id,
                        model=run.model_id,
                        input_tokens=usage.input_tokens,
                        output_tokens=usage.output_tokens,
                        cost_usd=cost,
                        step=answered,
                    )
                )
                if any(isinstance(p, ToolCallPart) for p in response.parts):
                    budget.check()  # only when the run would go on to another step
                    reached = await spend() if spend is not None else None
                    if reached is not None:
                        raise reached
            messages[:] = agent_run.all_messages()
            await save()
