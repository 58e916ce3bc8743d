"""Keep every use of the tracing SDK in this one module.

Views, tasks and services ask it for the current trace id and for named
subsegments; nothing else imports aws_xray_sdk, so an OpenTelemetry exporter
can replace the SDK here alone.
"""

from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger(__name__)


def current_trace_id() -> str:
    """Return the X-Ray trace id of the work in progress, or ""."""
    if not settings.TRACING_ENABLED:
        return ""
    from aws_xray_sdk.core import xray_recorder

    entity = xray_recorder.get_trace_entity()
    return str(getattr(entity, "trace_id", "") or "")
