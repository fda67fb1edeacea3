"""A start-up shortcut for typer's boolean flags.

typer (0.29) coerces each parameter through a pydantic ``TypeAdapter`` built on first use, which
imports pydantic (0.15–0.3 s, more than the rest of a client command's imports). Its own
``--help`` and completion flags arrive unset (``None``) on every command, so every command paid
for pydantic although an unset flag needs no coercion and a set one is already a ``bool``.
``skip_flag_adapters`` gives boolean flags typer's own pass-through coercion instead, which
accepts exactly a ``bool`` (or nothing). It relies on typer internals, so it checks they are
there and otherwise changes nothing; ``tests/cli/test_startup.py`` pins that client commands do
not import pydantic.
"""

from __future__ import annotations

from typing import Any


def skip_flag_adapters() -> None:
    """Install the shortcut (idempotent)."""
    from typer import _coercion, core

    param_cls: Any = getattr(core, "_TyperParameter", None)
    pass_through: Any = getattr(_coercion, "PassThroughRuntimeParam", None)
    original = getattr(param_cls, "get_runtime_param", None)
    if param_cls is None or pass_through is None or original is None:
        return
    if getattr(original, "_openinspect_flags", False):
        return

    def get_runtime_param(self: Any) -> Any:
        descriptor = self.type_descriptor
        if (
            getattr(self, "_runtime_param", "missing") is None
            and getattr(self, "is_flag", False)
            and not getattr(self, "envvar", None)  # an environment value is a string
            and descriptor.annotation is bool
            and descriptor.file_annotation is None
        ):
            self._runtime_param = pass_through(
                parameter_info=descriptor.parameter_info, annotation=bool
            )
        return original(self)

    get_runtime_param._openinspect_flags = True  # type: ignore[attr-defined]
    param_cls.get_runtime_param = get_runtime_param
