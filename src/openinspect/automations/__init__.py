"""Automations: sessions started by schedules, webhooks, Sentry alerts and GitHub events.

- ``runs``: the :class:`~openinspect.automations.runs.AutomationEngine` (``plane.automations``):
  firings become runs, runs become sessions, prompts' outcomes the runs' (its docstring is the
  API the doors use).
- ``manage``: create, edit, list, delete with the roles' visibility rules (REST and CLI).
- ``schedule``: cron in a time zone (cronsim), the 15-minute floor, previews and catch-up slots.
- ``conditions``, ``signatures``, ``untrusted``: the webhook doors' pure parts (JSONPath
  conditions, signature checks, the delimited untrusted payload block).
- ``inbound``: the generic webhook and Sentry doors (verify → parse → fire; one Sentry issue, one
  session), behind ``api.routes.automation_hooks``.

Records are in ``domain.automations``, rows in ``store.automations``; the scheduler and the
outcome consumer are services (``services.scheduler``, ``services.automation_runs``).
"""
