"""GET /metrics/: the service's figures in Prometheus' text format."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitoring.access import allowed, configured
from monitoring.collectors import AuditTally, DatabaseCollector
from monitoring.metrics import add_process_metrics

# One per process: it keeps the counts of settled audit rows between scrapes.
TALLY = AuditTally()


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """404 unless SECUREGATHER_METRICS_ADDRESSES or SECUREGATHER_METRICS_TOKEN is set; 403 for
    a request from another address without the token."""
    if not configured():
        raise Http404
    if not allowed(request):
        return HttpResponseForbidden("Not an address or token allowed to read the metrics.\n")
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(TALLY))
    add_process_metrics(registry)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
