"""A fake Sentry that sends internal-integration webhooks signed as Sentry signs them: the
payload builders (``payloads``), the signed POST (``send``) and ``openinspect testing
sentry-send`` (``cli``)."""

from openinspect.testing.sentry.payloads import (
    event_alert_payload,
    issue_payload,
    issue_regressed_payload,
    metric_alert_payload,
)
from openinspect.testing.sentry.send import (
    SentryDelivery,
    resource_of,
    send,
    send_sync,
    signed_request,
)

__all__ = [
    "SentryDelivery",
    "event_alert_payload",
    "issue_payload",
    "issue_regressed_payload",
    "metric_alert_payload",
    "resource_of",
    "send",
    "send_sync",
    "signed_request",
]
