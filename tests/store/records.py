"""Store records for tests (kept in ``openinspect.testing.records``, which the benches share)."""

from openinspect.testing.records import prompt_record, session_record

__all__ = ["prompt_record", "session_record"]
