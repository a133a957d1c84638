"""Who may read the metrics: the addresses SECUREGATHER_METRICS_ADDRESSES names, or a request
with the bearer token SECUREGATHER_METRICS_TOKEN."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest

from audit.origins import client_address

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks() -> list[Network]:
    """The allowed addresses as networks (an address alone is a network of one). The check
    monitoring.E001 names any entry that is neither."""
    allowed = []
    for entry in settings.SECUREGATHER_METRICS_ADDRESSES:
        try:
            allowed.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return allowed


def configured() -> bool:
    return bool(settings.SECUREGATHER_METRICS_ADDRESSES or settings.SECUREGATHER_METRICS_TOKEN)


def allowed(request: HttpRequest) -> bool:
    token = settings.SECUREGATHER_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Compared in constant time, so that the answer's timing says nothing of the token.
        if scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
            return True
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in network for network in networks())
