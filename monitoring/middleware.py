"""The time each webhook step takes to answer, by step."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from monitoring.metrics import STEP_SECONDS


class StepTimingMiddleware:
    """Observes securegather_step_seconds for each request a calls view answers, labelled with
    the view's URL name (incoming, language, card, pin, status, fallback): a fixed list."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        if match is not None and match.app_name == "calls" and match.url_name:
            STEP_SECONDS.labels(step=match.url_name).observe(time.perf_counter() - started)
        return response
