"""Middleware of the admin: sessions saved only where used, and refusals audited."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from audit.models import AuditEvent
from staff import auditing


class StaffSessionMiddleware(SessionMiddleware):
    """Django's sessions, saved only by a request that used its session: the admin's.

    SESSION_SAVE_EVERY_REQUEST (which renews the admin's 15 idle minutes) makes Django save the
    session of any request that sends a session cookie, read or not: a webhook or API request
    carrying any well-formed cookie, signed or forged, wrote a session row and got a Set-Cookie,
    and with the database down its apology became a 500. Those requests never read a session.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = request.session
        if not (session.accessed or session.modified):
            return response
        return super().process_response(request, response)


class StaffAuditMiddleware:
    """What the audit log needs of a request where Django has no hook that carries one.

    A request refused for want of a permission (PermissionDenied, answered 403) becomes an
    audit row: PCI DSS 10.2.1.4 counts it among invalid access attempts. Staff reach such a
    refusal in the admin: a page, a change or an export their role does not allow. And the
    request is kept for the length of its handling, so that a change the admin logs (a LogEntry,
    which carries no request) is audited with the address it came from.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with auditing.serving(request):
            return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if isinstance(exception, PermissionDenied):
            user = getattr(request, "user", None)
            AuditEvent.record(
                AuditEvent.Event.UNAUTHORIZED,
                AuditEvent.Outcome.FAILURE,
                request=request,
                actor=(user.get_username() if user is not None else "") or "unknown",
                channel=AuditEvent.Channel.ADMIN,
                # The path only: a query string is the requester's to fill.
                path=request.path,
                method=request.method or "",
            )
