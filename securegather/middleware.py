"""Middleware of the service itself, not of a call."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from securegather.views import healthz

HEALTHZ = "/healthz"


class HealthCheckMiddleware:
    """Answer /healthz first, before any middleware reads the Host header or redirects to https.

    Load balancers probe each host by its address over plain http (some send the target's IP as
    its Host, which ALLOWED_HOSTS rightly refuses for everything else). The answer holds nothing
    from the request, so neither check protects anything here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTHZ:
            return healthz(request)
        return self.get_response(request)
