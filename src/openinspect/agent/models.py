"""The model registry: ``provider:model`` names → pydantic-ai models, and the catalog shown to
people with each model's reasoning-effort options.

Providers: ``anthropic:…``, ``openai:…``, ``openai-compatible:…`` (base URL and key from settings)
and ``scripted:<name>`` (a local scripted LLM server speaking the OpenAI wire protocol, for tests
and the offline demo; which names work is ``agent.scripted``'s business). Keys stay here, in the
control plane; nothing of this reaches a sandbox.

A scripted model replays its script from the first turn in every session: the session id travels
as a request header (``REPLAY_HEADER``) and the scripted server keeps one position per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import importlib
import logging
import threading
import time
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import httpx

from openinspect.agent import scripted
from openinspect.errors import InvalidEffort, ModelNotConfigured, UnknownModel
from openinspect.settings import Settings

if TYPE_CHECKING:
    # pydantic-ai and the providers' SDKs take seconds to import: the server loads them after
    # it listens (``preload``), and only those of the providers it can use.
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings

    from openinspect.testing.llm_server import ScriptedLLMServer

Effort = Literal["minimal", "low", "medium", "high", "xhigh", "max"]
PROVIDERS = ("anthropic", "openai", "openai-compatible", "scripted")

_ANTHROPIC_EFFORTS: tuple[Effort, ...] = ("low", "medium", "high", "max")
_OPENAI_EFFORTS: tuple[Effort, ...] = ("minimal", "low", "medium", "high")
_GENERIC_EFFORTS: tuple[Effort, ...] = ("low", "medium", "high")


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the catalog."""

    id: str
    provider: str
    name: str
    label: str
    efforts: tuple[Effort, ...]
    default_effort: Effort | None
    available: bool
    # USD per million tokens, used when the provider reports no cost for a request.
    input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0


_CATALOG: tuple[tuple[str, str, tuple[Effort, ...], Effort | None, float, float], ...] = (
    ("anthropic:claude-sonnet-4-6", "Claude Sonnet 4.6", _ANTHROPIC_EFFORTS, "high", 3.0, 15.0),
    ("anthropic:claude-opus-4-6", "Claude Opus 4.6", _ANTHROPIC_EFFORTS, "high", 5.0, 25.0),
    ("anthropic:claude-haiku-4-5", "Claude Haiku 4.5", _ANTHROPIC_EFFORTS, None, 1.0, 5.0),
    ("openai:gpt-5", "GPT-5", _OPENAI_EFFORTS, "medium", 1.25, 10.0),
    ("openai:gpt-5-mini", "GPT-5 mini", _OPENAI_EFFORTS, "medium", 0.25, 2.0),
    ("openai:gpt-5-codex", "GPT-5 Codex", _OPENAI_EFFORTS, "medium", 1.25, 10.0),
)
# A nominal price for scripted models, so that cost accounting and budgets are exercised offline.
SCRIPTED_USD_PER_MTOK = (1.0, 2.0)


# What each provider needs, for the ``model_not_configured`` hint and ``doctor``.
PROVIDER_SETUP = {
    "anthropic": "Set ANTHROPIC_API_KEY or OPENINSPECT_MODELS__ANTHROPIC_API_KEY",
    "openai": "Set OPENAI_API_KEY or OPENINSPECT_MODELS__OPENAI_API_KEY",
    "openai-compatible": "Set OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL",
}
_DID_YOU_MEAN_CUTOFF = 0.6
MODEL_LIST_TIMEOUT_S = 3.0
"""How long submitting a prompt may wait for a provider to list its models."""
MODEL_LIST_TTL_S = 300.0
"""How long a provider's model list is reused."""
MODEL_LIST_RETRY_S = 30.0
"""After a provider could not be asked, how long until it is asked again."""
MODEL_LIST_MAX_IDS = 10_000
log = logging.getLogger(__name__)
_HINT_NAMES_MAX = 8
_ANTHROPIC_VERSION = "2023-06-01"


def known_names(provider: str) -> set[str]:
    """The model names ``provider`` is known to have without asking it: pydantic-ai's
    ``KnownModelName`` and our catalog (empty for ``openai-compatible``: any server, any names)."""
    from pydantic_ai.models import KnownModelName

    prefixes = {"anthropic": ("anthropic:",), "openai": ("openai:", "openai-chat:")}.get(
        provider, ()
    )
    names = {
        model.partition(":")[2]
        for model in typing.get_args(KnownModelName.__value__)
        if model.startswith(prefixes)
    }
    return names | {e[0].partition(":")[2] for e in _CATALOG if e[0].startswith(f"{provider}:")}


def did_you_mean(word: str, known: list[str]) -> str | None:
    """The closest of ``known`` to ``word``, if any is close enough to be what was meant."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=_DID_YOU_MEAN_CUTOFF)
    return close[0] if close else None


def split_model_id(model_id: str) -> tuple[str, str]:
    provider, sep, name = model_id.partition(":")
    if not sep or not name or provider not in PROVIDERS:
        guess = did_you_mean(provider if sep else model_id, list(PROVIDERS))
        if guess is None:
            guess = did_you_mean(model_id, [entry[0] for entry in _CATALOG])
        elif sep and name:
            guess = f"{guess}:{name}"
        hint = f"Providers: {', '.join(PROVIDERS)}; e.g. anthropic:claude-sonnet-4-6"
        raise UnknownModel(
            f"Expected a model named 'provider:model', got {model_id!r}",
            hint=f"Did you mean {guess}? {hint}" if guess else hint,
        )
    return provider, name


@dataclass
class ModelRegistry:
    """Builds models from names. Owns the scripted LLM servers it starts; ``close`` stops them."""

    settings: Settings
    _scripted: dict[Path, ScriptedLLMServer] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _built: dict[str, Model] = field(default_factory=dict)
    # provider → (when it was asked, the ids it listed or None when it could not be asked)
    _listed: dict[str, tuple[float, frozenset[str] | None]] = field(default_factory=dict)
    _list_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _loading: tuple[asyncio.AbstractEventLoop, asyncio.Task[None]] | None = None

    def catalog(self) -> list[ModelInfo]:
        """Models people can pick, with whether their provider is configured here."""
        models = self.settings.models
        has = {
            "anthropic": self.settings.anthropic_key() is not None,
            "openai": self.settings.openai_key() is not None,
        }
        out = [
            ModelInfo(
                mid,
                mid.split(":")[0],
                mid.split(":", 1)[1],
                label,
                efforts,
                default,
                has[mid.split(":")[0]],
                cin,
                cout,
            )
            for mid, label, efforts, default, cin, cout in _CATALOG
        ]
        cin, cout = SCRIPTED_USD_PER_MTOK
        for name in scripted.packaged_names():
            label = f"Demo script: {name.removeprefix(scripted.DEMO_PREFIX)} (no key needed)"
            out.append(
                ModelInfo(
                    f"scripted:{name}",
                    "scripted",
                    name,
                    label,
                    _GENERIC_EFFORTS,
                    None,
                    True,
                    cin,
                    cout,
                )
            )
        if models.openai_compatible_base_url:
            out.append(
                ModelInfo(
                    "openai-compatible:*",
                    "openai-compatible",
                    "*",
                    f"Any model at {models.openai_compatible_base_url}",
                    _GENERIC_EFFORTS,
                    None,
                    True,
                )
            )
        return out

    def default_model(self) -> str:
        """The configured default, or — when it cannot run here because no provider is set up —
        the first demo script, so that a server without keys is still usable."""
        configured = self.settings.agent.default_model
        if self._provider_configured(configured) or not self.demo_models():
            return configured
        return self.demo_models()[0]

    def demo_models(self) -> list[str]:
        """The shipped ``scripted:demo-…`` models, offered when no provider is configured."""
        return [f"scripted:{name}" for name in scripted.packaged_names()]

    def available_models(self) -> list[str]:
        """Ids of the catalog models that can run here."""
        return [m.id for m in self.catalog() if m.available]

    def not_configured(self, model_id: str) -> ModelNotConfigured:
        """The refusal for a model whose provider has no key or URL here, with the setting to
        set and, when one is close, a model that would work instead."""
        provider = model_id.partition(":")[0]
        available = [m for m in self.available_models() if not m.endswith(":*")]
        guess = did_you_mean(model_id, available)
        hint = PROVIDER_SETUP[provider]
        if guess:
            hint += f"; or did you mean {guess}?"
        elif available:
            hint += f"; available here: {', '.join(available)}"
        return ModelNotConfigured(f"{model_id} is not configured on this server", hint=hint)

    def base_url(self, model_id: str) -> str:
        """Where requests for the model go, for error messages and ``doctor``."""
        provider = split_model_id(model_id)[0]
        models = self.settings.models
        if provider == "anthropic":
            return models.anthropic_base_url or "https://api.anthropic.com"
        if provider == "openai":
            return models.openai_base_url or "https://api.openai.com/v1"
        if provider == "openai-compatible":
            return models.openai_compatible_base_url or "(no base URL)"
        return "the built-in scripted server"

    def _provider_configured(self, model_id: str) -> bool:
        provider = model_id.partition(":")[0]
        if provider == "anthropic":
            return self.settings.anthropic_key() is not None
        if provider == "openai":
            return self.settings.openai_key() is not None
        if provider == "openai-compatible":
            return self.settings.models.openai_compatible_base_url is not None
        return provider == "scripted"

    def info(self, model_id: str) -> ModelInfo:
        """Catalog entry for a model id (custom ids get generic options)."""
        provider, name = split_model_id(model_id)
        for entry in self.catalog():
            if entry.id == model_id:
                return entry
        if provider == "scripted":
            cin, cout = SCRIPTED_USD_PER_MTOK
            return ModelInfo(
                model_id,
                provider,
                name,
                f"Scripted ({name})",
                _GENERIC_EFFORTS,
                None,
                # Not an oracle: only the catalog (shipped demo names) reaches people.
                False,
                cin,
                cout,
            )
        efforts = (
            _ANTHROPIC_EFFORTS
            if provider == "anthropic"
            else (_OPENAI_EFFORTS if provider == "openai" else _GENERIC_EFFORTS)
        )
        return ModelInfo(model_id, provider, name, name, efforts, None, True)

    def validate(self, model_id: str, effort: str | None) -> None:
        """Raise ``UnknownModel``/``ModelNotConfigured``/``InvalidEffort`` for a name or effort
        this server cannot use — when the prompt is submitted, not after a sandbox boots."""
        info = self.info(model_id)
        if not self._provider_configured(model_id):
            raise self.not_configured(model_id)
        if info.provider == "scripted":
            # Resolve and parse now, so a bad name is refused before a session exists; the
            # errors are the same for every refused name (``agent.scripted``).
            scripted.load(self._script_path(info.name))
        if effort is not None and effort not in info.efforts:
            raise InvalidEffort(
                f"Reasoning effort {effort!r} is not offered by {model_id}",
                hint=f"Choose one of: {', '.join(info.efforts)}",
            )

    async def check(self, model_id: str, effort: str | None) -> None:
        """``validate``, then refuse with ``UnknownModel`` (and a did-you-mean) a name its
        provider does not have: one missing from the provider's own list (``GET …/models``,
        cached), or, when the provider cannot be asked, one close to a known name (a typo).
        A server that cannot be asked is never a reason to refuse an ``openai-compatible`` name."""
        self.validate(model_id, effort)
        provider, name = split_model_id(model_id)
        if provider == "scripted":
            return
        await self.loaded()
        static = known_names(provider)
        if name in static:
            return
        listed = await self._provider_models(provider)
        if listed is not None and name in listed:
            return
        known = sorted(static | (listed or frozenset()))
        guess = did_you_mean(name, known)
        if listed is None and (provider == "openai-compatible" or guess is None):
            return  # cannot tell: the provider itself answers when the prompt runs
        if guess:
            hint = f"Did you mean {provider}:{guess}?"
        else:
            shown = ", ".join(f"{provider}:{n}" for n in known[:_HINT_NAMES_MAX])
            more = " …" if len(known) > _HINT_NAMES_MAX else ""
            hint = f"Models {provider} has: {shown}{more}"
        raise UnknownModel(f"{provider} has no model named {name!r}", hint=hint)

    async def _provider_models(self, provider: str) -> frozenset[str] | None:
        """The ids the provider lists, cached; None when it cannot be asked (no answer within
        ``MODEL_LIST_TIMEOUT_S``, an error, a server without the route)."""
        lock = self._list_locks.setdefault(provider, asyncio.Lock())
        async with lock:
            cached = self._listed.get(provider)
            now = time.monotonic()
            if cached is not None:
                asked_at, ids = cached
                if now - asked_at < (MODEL_LIST_TTL_S if ids is not None else MODEL_LIST_RETRY_S):
                    return ids
            ids = await self._ask_models(provider)
            self._listed[provider] = (time.monotonic(), ids)
            return ids

    async def _ask_models(self, provider: str) -> frozenset[str] | None:
        models = self.settings.models
        headers: dict[str, str] = {}
        if provider == "anthropic":
            key = self.settings.anthropic_key()
            url = f"{(models.anthropic_base_url or 'https://api.anthropic.com').rstrip('/')}"
            url += "/v1/models?limit=1000"
            if key is not None:
                headers = {"x-api-key": key.get_secret_value()}
            headers["anthropic-version"] = _ANTHROPIC_VERSION
        else:
            key = (
                self.settings.openai_key()
                if provider == "openai"
                else models.openai_compatible_api_key
            )
            url = f"{self.base_url(f'{provider}:x').rstrip('/')}/models"
            if key is not None:
                headers = {"Authorization": f"Bearer {key.get_secret_value()}"}
        try:
            async with httpx.AsyncClient(timeout=MODEL_LIST_TIMEOUT_S) as client:
                response = await client.get(url, headers=headers)
            response.raise_for_status()
            data = response.json()["data"]
            ids = frozenset(str(entry["id"]) for entry in data[:MODEL_LIST_MAX_IDS])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        return ids or None

    def model_settings(
        self, model_id: str, effort: str | None, *, session_id: str | None = None
    ) -> ModelSettings:
        """Request settings carrying the reasoning effort the way the provider takes it (and,
        for scripted models, the session whose script position answers)."""
        from pydantic_ai.settings import ModelSettings

        provider = split_model_id(model_id)[0]
        if provider == "scripted" and session_id is not None:
            from openinspect.testing.llm_server import REPLAY_HEADER

            return ModelSettings(extra_headers={REPLAY_HEADER: session_id})
        if effort is None:
            return ModelSettings()
        if provider == "anthropic":
            return ModelSettings(thinking=effort)  # type: ignore[typeddict-item]
        # OpenAI-style servers take `reasoning_effort`; the provider-specific setting is sent
        # as is, where the generic one is dropped for models pydantic-ai does not know.
        from pydantic_ai.models.openai import OpenAIChatModelSettings

        return OpenAIChatModelSettings(openai_reasoning_effort=effort)  # type: ignore[typeddict-item]

    def cost_usd(
        self, model_id: str, reported: Decimal | None, tokens_in: int, tokens_out: int
    ) -> float:
        """The provider's reported cost, else our catalog price."""
        if reported is not None:
            return float(reported)
        info = self.info(model_id)
        return (tokens_in * info.input_usd_per_mtok + tokens_out * info.output_usd_per_mtok) / 1e6

    def build(self, model_id: str) -> Model:
        """A pydantic-ai model for the name, built once and reused, so its HTTP client keeps
        its connections. Raises ``ModelNotConfigured`` with what to configure."""
        model = self._built.get(model_id)
        if model is None:
            model = self._built[model_id] = self._build(model_id)
        return model

    def _build(self, model_id: str) -> Model:
        provider, name = split_model_id(model_id)
        models = self.settings.models
        if provider == "anthropic":
            key = self.settings.anthropic_key()
            if key is None:
                raise self.not_configured(model_id)
            from pydantic_ai.models.anthropic import AnthropicModel
            from pydantic_ai.providers.anthropic import AnthropicProvider

            return AnthropicModel(
                name,
                provider=AnthropicProvider(
                    api_key=key.get_secret_value(), base_url=models.anthropic_base_url
                ),
            )
        if provider == "openai":
            key = self.settings.openai_key()
            if key is None:
                raise self.not_configured(model_id)
            return _openai_chat(name, models.openai_base_url, key.get_secret_value())
        if provider == "openai-compatible":
            if not models.openai_compatible_base_url:
                raise self.not_configured(model_id)
            key_value = models.openai_compatible_api_key
            return _openai_chat(
                name,
                models.openai_compatible_base_url,
                key_value.get_secret_value() if key_value else "none",
            )
        server = self._scripted_server(self._script_path(name))
        return _openai_chat(f"scripted-{Path(name).stem}", server.openai_base_url, "scripted")

    def client_modules(self) -> list[str]:
        """The model client modules this server can use: those of the providers configured here
        and of the default model (a demo script when none is), in import order."""
        providers = {p for p in PROVIDERS if self._provider_configured(f"{p}:x")}
        providers &= {"anthropic", "openai", "openai-compatible"}
        providers.add(self.default_model().partition(":")[0])
        modules = ["pydantic_ai", "openinspect.agent.runner"]
        if "anthropic" in providers:
            modules += ["pydantic_ai.providers.anthropic", "pydantic_ai.models.anthropic"]
        if providers & {"openai", "openai-compatible", "scripted"}:  # all OpenAI wire protocol
            modules += ["pydantic_ai.providers.openai", "pydantic_ai.models.openai"]
        return modules

    async def loaded(self) -> None:
        """Wait until ``preload`` has run (once, in a thread; the server starts it as soon as it
        listens). Every path that imports pydantic-ai lazily awaits this first: pydantic-ai's
        package imports itself circularly, so a second thread importing it while the preload
        does can find it half-initialised (``ImportError: … partially initialized module``)."""
        loop = asyncio.get_running_loop()
        if self._loading is None or self._loading[0] is not loop:
            self._loading = (loop, loop.create_task(self._preload(), name="load model clients"))
        await asyncio.shield(self._loading[1])

    async def _preload(self) -> None:
        # A daemon thread, not ``to_thread``: ``asyncio.run`` waits for its executor's threads
        # on the way out, so a server stopped while the imports run took seconds to exit.
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def work() -> None:
            error: BaseException | None = None
            try:
                self.preload()
            except BaseException as exc:  # handed to the loop, raised there
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, error)

        threading.Thread(target=work, name="load model clients", daemon=True).start()
        try:
            await done
        except Exception:  # reported here; the first use raises it again
            log.exception("could not load the model clients")

    def preload(self) -> None:
        """Import the model clients this server can use (``client_modules``), so the first
        prompt does not pay for it (seconds). Blocking: the server runs it in a thread once it
        listens; anything it has not loaded yet is imported when first used."""
        for module in self.client_modules():
            importlib.import_module(module)

    def _script_path(self, name: str) -> Path:
        return scripted.resolve(name, self.settings.models.scripted_dir)

    def _scripted_server(self, path: Path) -> ScriptedLLMServer:
        from openinspect.testing.llm_server import ScriptedLLMServer

        with self._lock:
            server = self._scripted.get(path)
            if server is None:
                server = ScriptedLLMServer(scripted.load(path))
                server.start()
                self._scripted[path] = server
            return server

    def close(self) -> None:
        with self._lock:
            for server in self._scripted.values():
                server.stop()
            self._scripted.clear()


def _openai_chat(name: str, base_url: str | None, api_key: str) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    return OpenAIChatModel(name, provider=OpenAIProvider(base_url=base_url, api_key=api_key))
