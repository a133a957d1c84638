"""Where a request comes from: the one address audit rows, refusal counts, locks and allow-lists
name.

Behind a reverse proxy every connection's peer (REMOTE_ADDR) is the proxy, so a count kept per
REMOTE_ADDR is one count for every client: ten failed sign-ins by anyone would lock out all
staff. The proxy names the client in a header instead, but a client can send that header too,
so it is read only when settings declare the proxy (SECUREGATHER_TRUSTED_PROXY_HEADER and
SECUREGATHER_TRUSTED_PROXY_COUNT), and then only at the position the declared proxies wrote.
django-axes takes its addresses from here (AXES_CLIENT_IP_CALLABLE), so there is one rule.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.http import HttpRequest
from ipware import get_client_ip

# A header's name as RFC 9110 allows it, less "_": a server drops or folds a name with an
# underscore into the same WSGI key as its dashed twin, which a client could then send.
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^`|~-]+$")


def client_address(request: HttpRequest) -> str:
    """The client's address: the peer of this connection (REMOTE_ADDR), or, when a proxy is
    declared, the address the outermost declared proxy saw, read from the header they append to.

    Each of the SECUREGATHER_TRUSTED_PROXY_COUNT proxies appends its own peer to the header
    (nginx: `$proxy_add_x_forwarded_for`), so the client's address is that many entries from the
    right; whatever the client sent itself stands further left and is never read. A request
    whose header is missing or names too few hops did not come through every declared proxy:
    its peer is the best that can be said of it.
    """
    peer = str(request.META.get("REMOTE_ADDR", ""))
    header, count = trusted_proxy()
    if not header or count < 1:
        return peer
    # ipware counts the proxies listed in the header; the innermost one is the peer, not listed.
    address, _ = get_client_ip(
        request,
        proxy_order="left-most",
        proxy_count=count - 1,
        request_header_order=[meta_key(header)],
        strict=False,
        algorithm="modern",
    )
    return address or peer


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
