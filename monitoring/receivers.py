"""The audit log's signals, counted."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from audit.signals import append_failed
from monitoring.metrics import AUDIT_APPEND_FAILURES, CALL_STEP


@receiver(append_failed, dispatch_uid="monitoring.audit_append_failed")
def count_append_failure(sender: Any, **kwargs: Any) -> None:
    AUDIT_APPEND_FAILURES.labels(where=CALL_STEP).inc()
