"""The span attributes that make an OpenTelemetry span a business event (README, "On the wire").

The SDK writes them and the collector reads them; the correlation and alias names are also the
W3C baggage entries that carry a transaction across processes.
"""

from __future__ import annotations

PREFIX = "threadline."
CORRELATION_ID = "threadline.correlation_id"
CORRELATION_KIND = "threadline.correlation_kind"
WORKFLOW = "threadline.workflow"
STEP = "threadline.step"
SYSTEM = "threadline.system"
STATUS = "threadline.status"
EVENT_ID = "threadline.event_id"
ALIAS_PREFIX = "threadline.alias."  # + the alias's kind, e.g. threadline.alias.erp.sales_order
ERROR_KIND = "threadline.error.kind"
ERROR_MESSAGE = "threadline.error.message"
ATTEMPT = "threadline.attempt"
AMOUNT = "threadline.amount"
CURRENCY = "threadline.currency"
DURATION_MS = "threadline.duration_ms"
