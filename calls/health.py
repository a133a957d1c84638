"""GET /healthz: whether this host can take calls, for the load balancer, answered first."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from accounts import lockout
from keys.keyring import KeyringError, get_keyring
from keys.models import KeyRecord

logger = logging.getLogger(__name__)


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when this host can take calls, 503 when it cannot. No auth, so little detail: the
    guessing watch's state for monitoring (true while this window or the last went over
    SECUREGATHER_GUESSING_FAILURES), which names no card, account or caller.

    It can when the database answers and no key id of the ring now holds other bytes than it
    did at first use (securegather.E007): a host whose ring fails that check apologises on
    every call, so it must leave the load balancer too. One indexed read answers both.
    """
    try:
        ring = get_keyring()
        changed = KeyRecord.changed(ring.every_key)
        suspected = lockout.guessing_suspected()
    except DatabaseError as exc:
        logger.error(
            "health check: the database did not answer, or is not migrated (%s)",
            type(exc).__name__,
        )
        return unavailable()
    except KeyringError as exc:
        logger.error("health check: the keyring is unusable (%s)", exc)
        return unavailable()
    if changed:
        logger.error(
            "health check: key id %r holds other bytes than when it was first used "
            "(securegather.E007)",
            changed[0],
        )
        return unavailable()
    # Guessing does not stop a host taking calls: the lockout holds whatever the rate.
    return JsonResponse({"status": "ok", "guessing_suspected": suspected})


def unavailable() -> JsonResponse:
    return JsonResponse({"status": "unavailable"}, status=503)


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
