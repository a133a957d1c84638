"""Where a request comes from: the one address audit rows, refusal counts, locks and allow-lists
name.

Behind a reverse proxy every connection's peer (REMOTE_ADDR) is the proxy, so a count kept per
REMOTE_ADDR is one count for every client: ten failed sign-ins by anyone would lock out all
staff. The proxy names the client in a header instead, but a client can send that header too,
so it is read only when settings declare the proxy (SECUREGATHER_TRUSTED_PROXY_HEADER and
SECUREGATHER_TRUSTED_PROXY_COUNT), and then only at the position the declared proxies wrote.
django-axes takes its addresses from here (AXES_CLIENT_IP_CALLABLE, lockout_address), so there
is one rule.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.http import HttpRequest

# A header's name as RFC 9110 allows it, less "_": a server drops or folds a name with an
# underscore into the same WSGI key as its dashed twin, which a client could then send.
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^`|~-]+$")

# The one address django-axes counts every request named by no address under (lockout_address):
# the unspecified address, which is no host's and from which no connection comes.
UNKNOWN_CLIENT = "0.0.0.0"  # noqa: S104  (an address stored, never bound to)


def client_address(request: HttpRequest) -> str:
    """The client's address: the peer of this connection (REMOTE_ADDR), or, when a proxy is
    declared, the address the outermost declared proxy saw, read from the header they append to;
    "" when that cannot be said.

    Each of the SECUREGATHER_TRUSTED_PROXY_COUNT proxies appends its own peer to the header
    (nginx: `$proxy_add_x_forwarded_for`, never quoted), so the client's address is that many
    entries from the right; whatever the client sent itself stands further left and is never
    read, however it is spelled. A request whose header is missing, names too few hops or holds
    no address at that place did not come through every declared proxy as declared: it is named
    by no address (""), never by its peer, which is a proxy (127.0.0.1 behind nginx, an address
    an allow-list could hold), nor by an entry further left, which its client wrote.
    """
    header, count = trusted_proxy()
    if not header or count < 1:
        return str(request.META.get("REMOTE_ADDR", ""))
    entries = [entry.strip() for entry in str(request.META.get(meta_key(header), "")).split(",")]
    if len(entries) < count:
        return ""
    try:
        return str(ipaddress.ip_address(entries[-count]))
    except ValueError:
        return ""


def lockout_address(request: HttpRequest) -> str:
    """The address django-axes counts a sign-in's failures under (AXES_CLIENT_IP_CALLABLE): the
    client's, or UNKNOWN_CLIENT for every request named by no address.

    axes stores addresses in an IP address column, which keeps "" as NULL, and a NULL matches no
    count: failures from no address would never lock. Counted together under one address that
    no client can connect from, ten of them lock the lot, as ten from one client lock that one.
    """
    return client_address(request) or UNKNOWN_CLIENT


def trusted_proxy() -> tuple[str, int]:
    """The declared proxies' header and how many of them stand in front ("", 0: none)."""
    return settings.SECUREGATHER_TRUSTED_PROXY_HEADER, settings.SECUREGATHER_TRUSTED_PROXY_COUNT


def meta_key(header: str) -> str:
    """The request.META key a header arrives under (WSGI, PEP 3333)."""
    return "HTTP_" + header.upper().replace("-", "_")


@register()
def check_trusted_proxy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    header, count = trusted_proxy()
    hint = (
        "Set both, e.g. SECUREGATHER_TRUSTED_PROXY_HEADER=X-Forwarded-For and "
        "SECUREGATHER_TRUSTED_PROXY_COUNT=1 behind one nginx, or neither when clients connect "
        "to gunicorn directly (docs/configuration.md, 'TLS and the proxy')."
    )
    if header and not HEADER_NAME.match(header):
        return [
            Error(
                f"SECUREGATHER_TRUSTED_PROXY_HEADER is not a header name: {header!r}.",
                hint="Letters, digits and '-' only, e.g. X-Forwarded-For.",
                id="audit.E011",
            )
        ]
    if count < 0 or bool(header) != (count > 0):
        return [
            Error(
                "SECUREGATHER_TRUSTED_PROXY_HEADER and SECUREGATHER_TRUSTED_PROXY_COUNT disagree "
                f"(header {header!r}, count {count}): a declared proxy needs its header and a "
                "count of 1 or more, and no proxy needs neither.",
                hint=hint,
                id="audit.E010",
            )
        ]
    return []
