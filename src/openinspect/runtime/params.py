"""Checked access to RPC parameters: a wrong type is an ``invalid_params`` error, not a crash."""

from __future__ import annotations

from collections.abc import Mapping

from .protocol import RpcFailure


def require_str(params: Mapping[str, object], name: str, *, allow_empty: bool = True) -> str:
    """The string parameter ``name``; it must be present."""
    value = params.get(name)
    if not isinstance(value, str):
        raise RpcFailure(
            "invalid_params", f"expected a string '{name}', got {type(value).__name__}"
        )
    if not allow_empty and not value:
        raise RpcFailure("invalid_params", f"'{name}' must not be empty")
    return value


def optional_str(params: Mapping[str, object], name: str) -> str | None:
    """The string parameter ``name``, or None when absent or null."""
    if params.get(name) is None:
        return None
    return require_str(params, name)


def optional_int(params: Mapping[str, object], name: str, *, minimum: int) -> int | None:
    """The integer parameter ``name`` (at least ``minimum``), or None when absent or null."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RpcFailure(
            "invalid_params", f"expected an integer '{name}', got {type(value).__name__}"
        )
    if value < minimum:
        raise RpcFailure("invalid_params", f"'{name}' must be at least {minimum}, got {value}")
    return value


def require_positive_float(params: Mapping[str, object], name: str) -> float:
    """The number parameter ``name``; it must be present and greater than zero."""
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RpcFailure(
            "invalid_params", f"expected a number '{name}', got {type(value).__name__}"
        )
    if value <= 0:
        raise RpcFailure("invalid_params", f"'{name}' must be greater than 0, got {value}")
    return float(value)


def optional_str_map(params: Mapping[str, object], name: str) -> dict[str, str]:
    """The string-to-string object ``name``, empty when absent or null."""
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise RpcFailure("invalid_params", f"'{name}' must be an object of strings to strings")
    return dict(value)
