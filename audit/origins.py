"""Where a request comes from: the one address audit rows, refusal counts and locks name."""

from __future__ import annotations

from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, the peer of this connection.

    Once a declared proxy is honoured, this will be the address the proxy names, and the proxy's
    own address will be no source.
    """
    return str(request.META.get("REMOTE_ADDR", ""))
