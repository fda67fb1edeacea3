"""The inbound doors of automations: a generic webhook and a Sentry internal integration's
webhooks. Verify → parse → fire; the routes (``api.routes.automation_hooks``) only check the
content type, read the (size-capped) body and answer what :class:`Delivery` says.

Generic webhook, ``POST /webhooks/automations/<id>`` (:func:`webhook`)
    Authenticated by the automation's trigger: its secret as ``Authorization: Bearer <secret>``,
    or the hex HMAC-SHA256 of the raw body under the secret in ``signature_header``
    (``automations.signatures``, constant time). The body is JSON (anything else: 400
    ``invalid_input``). The automation's conditions decide; a payload that does not match makes
    **no run** (outcome ``skipped`` with the reason): a noisy sender's unwanted deliveries leave
    no trace in the run history, which would otherwise grow by one row a delivery. The run's key
    is ``webhook:idem:<value>``, the value taken from the ``idempotency_header`` header or the
    first node the ``idempotency_path`` JSONPath selects (a string as it is, anything else as
    canonical JSON; a value over :data:`IDEMPOTENCY_VALUE_MAX` characters by its sha256), else
    ``webhook:delivery:<random id>``: duplicates are one run only when the sender names them.
    The payload reaches the agent as the run's context, fenced as untrusted data
    (``automations.untrusted``).

Sentry, ``POST /webhooks/sentry/<id>`` (:func:`sentry`)
    ``Sentry-Hook-Signature`` checked with the automation's client secret, then
    ``Sentry-Hook-Timestamp`` (at most 5 minutes from the engine's clock). Which alerts count is
    ``automations.sentry.sentry_key``'s decision; any other resource or action is ``ignored``
    (nothing recorded). Conditions apply as for a webhook. **One Sentry issue, one session**: the
    issue's first alert fires a run keyed ``sentry_issue:<issue id>`` (so concurrent first alerts
    make one run), with ``origin_ref`` the same key, that starts a session; a later alert finds
    that run (``store.automations.newest_starter``) and prompts its session (``follow_up``,
    ``when_busy="skip"``: nothing while the session works) with a run keyed by the alert itself,
    so a redelivered alert is one run. A redelivery of the alert that fired the starter is told
    by its payload's digest (Sentry resends the same body): that run, a duplicate. While the
    starter has no session yet (queued behind another run) a later alert is ``skipped``, no run
    recorded; if it ended without one (skipped while the automation was paused or busy, or its
    start failed), the next alert fires a new starter, keyed ``<issue key>:after:<run id>``.

Who may learn what
    An unknown id, a deleted automation, an automation of the other door's kind, a missing or
    wrong secret or signature: one answer, :func:`refusal` (401 ``webhook_signature_invalid``,
    one message), after the same work (one store read; a signature check against a decoy secret
    when there is no automation), so a stranger cannot probe which ids exist or how an
    automation authenticates. ``timestamp_stale`` is said only to a delivery whose signature was
    good, i.e. to Sentry. A paused automation is not hidden from its authenticated sender: the
    firing is recorded as a skipped run (the engine's rule) and answered as such.

Nothing here logs or answers a payload, a secret or a header's value.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from openinspect.automations.runs import AutomationEngine, payload_digest
from openinspect.automations.sentry import SentryKey, sentry_key
from openinspect.automations.signatures import (
    SENTRY_SIGNATURE_HEADER,
    SENTRY_TIMESTAMP_HEADER,
    generate_secret,
    verify_bearer,
    verify_hmac_sha256,
    verify_sentry,
)
from openinspect.automations.untrusted import render_sentry, render_untrusted
from openinspect.domain.automations import Automation, AutomationRun, TriggerKind, WebhookTrigger
from openinspect.domain.commands import ID_MAX
from openinspect.domain.ids import new_id
from openinspect.errors import (
    AutomationNotFound,
    BodyNotJson,
    ConfigError,
    TimestampStale,
    WebhookSignatureInvalid,
)

log = logging.getLogger(__name__)

WEBHOOK_BODY_MAX = 64 * 1024
SENTRY_BODY_MAX = 256 * 1024
IDEMPOTENCY_VALUE_MAX = 200
"""Characters of an idempotency value kept as they are; a longer one is keyed by its sha256."""
SENTRY_RESOURCE_HEADER = "Sentry-Hook-Resource"
FOLLOW_UP_LEAD = "Sentry sent another alert about the issue this session is investigating."
_SHOWN = 40

Outcome = Literal["fired", "duplicate", "skipped", "ignored"]


@dataclass(frozen=True)
class Delivery:
    """What a delivery did. ``fired``: it recorded ``run`` (whatever the run's status: it may be
    queued, or skipped by the automation's policy or pause); ``duplicate``: an earlier delivery
    recorded ``run``; ``skipped``: conditions (or a session not started yet) kept it from making
    a run; ``ignored``: a Sentry alert that starts nothing."""

    outcome: Outcome
    run: AutomationRun | None = None
    reason: str | None = None


def refusal() -> WebhookSignatureInvalid:
    """The one answer to every delivery that does not prove its sender (see the docstring)."""
    return WebhookSignatureInvalid(
        "This webhook URL did not accept the delivery's credentials",
        hint="Send the secret shown when the automation was created, as its trigger says: a "
        "bearer secret, or an HMAC-SHA256 signature of the raw body (Sentry: the integration's "
        "client secret)",
    )


@functools.cache
def _decoy() -> str:
    """A secret no sender knows, checked against when there is no automation to check."""
    return generate_secret()


async def _door(
    engine: AutomationEngine, automation_id: str, kind: TriggerKind
) -> tuple[Automation | None, str]:
    """The automation behind a door of ``kind`` and its secret; ``(None, decoy)`` for an id
    that is no such automation (or whose secret cannot be opened: logged, as unknown)."""
    if len(automation_id) > ID_MAX:
        return None, _decoy()
    try:
        found = await engine.store.automations.with_secret(automation_id)
    except ConfigError:
        log.warning("automation %s: its secret cannot be opened (the key changed?)", automation_id)
        return None, _decoy()
    if found is None or found[0].trigger.kind != kind or not found[1]:
        return None, _decoy()
    return found[0], found[1]


def _verify_webhook(
    trigger: WebhookTrigger | None, secret: str, headers: Mapping[str, str], body: bytes
) -> bool:
    try:
        if trigger is not None and trigger.auth == "hmac":
            name = trigger.signature_header
            verify_hmac_sha256(secret.encode(), body, headers.get(name), header=name)
        else:
            verify_bearer(headers.get("authorization"), secret)
    except WebhookSignatureInvalid:
        return False
    return True


def parse_json(body: bytes) -> Any:
    """The body as JSON; ``BodyNotJson`` (400) when it is not UTF-8 JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BodyNotJson(
            "The delivery's body is not JSON",
            hint="Send a JSON document with Content-Type: application/json",
        ) from exc


def idempotency_key(trigger: WebhookTrigger, headers: Mapping[str, str], payload: Any) -> str:
    """The run key of a webhook delivery (see the module docstring)."""
    value: object = None
    if trigger.idempotency_header is not None:
        value = headers.get(trigger.idempotency_header) or None
    elif trigger.idempotency_path is not None:
        from openinspect.automations import conditions  # jsonpath and regex: on first use

        try:
            found = conditions.select(trigger.idempotency_path, payload, limit=1)
        except ValueError:
            log.warning("an automation's idempotency_path no longer compiles; keyed per delivery")
            found = []
        value = found[0] if found else None
    if value is None or value == "":
        return f"webhook:delivery:{new_id('dlv')}"
    text = value if isinstance(value, str) else _canonical(value)
    if len(text) > IDEMPOTENCY_VALUE_MAX:
        text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return f"webhook:idem:{text}"


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _skipped_by(automation: Automation, payload: Any) -> Delivery | None:
    from openinspect.automations import conditions  # jsonpath and regex: on first use

    decision = conditions.evaluate(automation.conditions, payload)
    if decision.matched:
        return None
    return Delivery("skipped", reason=decision.summary)


def _fired(run: AutomationRun, context: str) -> Delivery:
    """A run returned by ``fire``/``follow_up`` is this delivery's when it carries the context
    this delivery rendered (its untrusted block's boundary is random per render); else an
    earlier delivery made it."""
    outcome: Outcome = "fired" if run.context == context else "duplicate"
    log.info(
        "automation %s: delivery %s run %s (%s)", run.automation_id, outcome, run.id, run.status
    )
    return Delivery(outcome, run)


async def webhook(
    engine: AutomationEngine, automation_id: str, headers: Mapping[str, str], body: bytes
) -> Delivery:
    """One delivery to an automation's webhook URL (see the module docstring). ``headers``
    look up case-insensitively (starlette's ``Headers``)."""
    automation, secret = await _door(engine, automation_id, "webhook")
    trigger = automation.trigger if automation is not None else None
    assert trigger is None or isinstance(trigger, WebhookTrigger)
    if not _verify_webhook(trigger, secret, headers, body) or automation is None:
        raise refusal()
    assert trigger is not None
    payload = parse_json(body)
    skipped = _skipped_by(automation, payload)
    if skipped is not None:
        return skipped
    context = render_untrusted(
        payload, source=f"the webhook of automation {automation.name!r}", received_at=engine.now()
    )
    try:
        run = await engine.fire(
            automation.id,
            trigger="webhook",
            key=idempotency_key(trigger, headers, payload),
            payload=payload,
            context=context,
        )
    except AutomationNotFound:  # deleted since it was read
        raise refusal() from None
    return _fired(run, context)


async def sentry(
    engine: AutomationEngine, automation_id: str, headers: Mapping[str, str], body: bytes
) -> Delivery:
    """One delivery to an automation's Sentry URL (see the module docstring)."""
    automation, secret = await _door(engine, automation_id, "sentry")
    try:
        verify_sentry(
            secret.encode(),
            body,
            headers.get(SENTRY_SIGNATURE_HEADER),
            headers.get(SENTRY_TIMESTAMP_HEADER),
            now_s=engine.now().timestamp(),
        )
    except TimestampStale:
        if automation is None:  # unreachable: no one signs with the decoy; said once anyway
            raise refusal() from None
        raise
    except WebhookSignatureInvalid:
        raise refusal() from None
    if automation is None:
        raise refusal()
    payload = parse_json(body)
    resource = headers.get(SENTRY_RESOURCE_HEADER)
    keys = sentry_key(resource, payload)
    if keys is None:
        action = payload.get("action") if isinstance(payload, dict) else None
        return Delivery("ignored", reason=f"{_shown(resource)} {_shown(action)} starts nothing")
    skipped = _skipped_by(automation, payload)
    if skipped is not None:
        return skipped
    try:
        return await _sentry_alert(engine, automation, resource, payload, keys)
    except AutomationNotFound:
        raise refusal() from None


async def _sentry_alert(
    engine: AutomationEngine,
    automation: Automation,
    resource: str | None,
    payload: Any,
    keys: SentryKey,
) -> Delivery:
    head = await engine.store.automations.newest_starter(automation.id, keys.session_key)
    now = engine.now()
    if head is not None and head.payload_digest == payload_digest(payload):
        return Delivery("duplicate", head)  # the alert that fired it, delivered again
    if head is None or (head.session_id is None and head.finished):
        # The first alert, or the first since its last starter ended without a session
        # (skipped while paused or busy, or failed to start): start one. Alerts racing here
        # derive the same key, so they make one run.
        key = keys.session_key if head is None else f"{keys.session_key}:after:{head.id}"
        context = render_sentry(resource, payload, received_at=now)
        run = await engine.fire(
            automation.id,
            trigger="sentry",
            key=key,
            payload=payload,
            context=context,
            origin_ref=keys.session_key,
        )
        return _fired(run, context)
    if head.session_id is None:
        return Delivery(
            "skipped",
            head,
            reason=f"run {head.id}, which is to start this issue's session, has not started it yet",
        )
    content = f"{FOLLOW_UP_LEAD}\n\n{render_sentry(resource, payload, received_at=now)}"
    run = await engine.follow_up(
        automation.id,
        session_id=head.session_id,
        key=keys.run_key,
        content=content,
        trigger="sentry",
        payload=payload,
        origin_ref=keys.session_key,
        when_busy="skip",
    )
    return _fired(run, content)


def _shown(value: object) -> str:
    """A sender's value, quoted and cut short, for a reason."""
    text = value if isinstance(value, str) else "(none)"
    return repr(text[:_SHOWN]) + ("…" if len(text) > _SHOWN else "")
