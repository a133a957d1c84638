"""Staff sign-ins, failures, lockouts and sign-outs, written to the audit log (PCI DSS 10.2.1.4,
10.2.1.5); a wrong one-time code is recorded by the admin's sign-in form (admin_site.py).

Passwords and one-time codes never reach a row: only the username, when it names an existing user
(a password typed into the username box is not kept)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from securegather.models import AuditEvent

UNKNOWN = "unknown"


def _known(username: str | None) -> str:
    User = get_user_model()
    if username and User._default_manager.filter(**{User.USERNAME_FIELD: username}).exists():
        return username
    return UNKNOWN


def _record(
    event: str, outcome: str, request: HttpRequest | None, actor: str, **detail: Any
) -> None:
    AuditEvent.record(
        event,
        outcome,
        request=request,
        actor=actor,
        channel=AuditEvent.Channel.ADMIN,
        **detail,
    )


def record_staff_action(request: HttpRequest, event: str, outcome: str, **detail: Any) -> None:
    """What the signed-in staff member did in the admin (viewed, changed, exported), as them."""
    _record(event, outcome, request, request.user.get_username(), **detail)


@receiver(user_logged_in, dispatch_uid="securegather.staff_login")
def staff_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    device = getattr(user, "otp_device", None)
    _record(
        AuditEvent.Event.STAFF_LOGIN,
        AuditEvent.Outcome.SUCCESS,
        request,
        user.get_username(),
        second_factor=type(device).__name__ if device else None,
    )


@receiver(user_login_failed, dispatch_uid="securegather.staff_login_failed")
def staff_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    locked = bool(getattr(request, "axes_locked_out", False))
    _record(
        AuditEvent.Event.STAFF_LOGIN_FAILED,
        AuditEvent.Outcome.FAILURE,
        request,
        _known(credentials.get("username")),
        reason="locked_out" if locked else "password",
    )


@receiver(user_locked_out, dispatch_uid="securegather.staff_locked_out")
def staff_locked_out(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str, **kwargs: Any
) -> None:
    _record(
        AuditEvent.Event.STAFF_LOCKED_OUT, AuditEvent.Outcome.FAILURE, request, _known(username)
    )


@receiver(user_logged_out, dispatch_uid="securegather.staff_logout")
def staff_logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        actor = user.get_username()
        _record(AuditEvent.Event.STAFF_LOGOUT, AuditEvent.Outcome.INFO, request, actor)
