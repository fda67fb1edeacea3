"""Generate ``docs/settings.md`` from the settings tree (``python -m openinspect.settings_doc``)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from openinspect.settings import Settings

HEADER = """# Settings reference

Generated from `src/openinspect/settings.py` by `python -m openinspect.settings_doc`; a test
keeps it in step. Every setting is an environment variable; nested sections join with `__`.

| variable | default | description |
| --- | --- | --- |
"""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "(section)"
    value = field.default
    return "—" if value is None else f"`{value}`"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_rows(annotation, f"{prefix}{name.upper()}__"))
            continue
        env = f"{prefix}{name.upper()}"
        rows.append(f"| `{env}` | {_default(field)} | {field.description or ''} |")
    return rows


def render() -> str:
    return HEADER + "\n".join(_rows(Settings, "OPENINSPECT_")) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/settings.md")
    target.write_text(render())
