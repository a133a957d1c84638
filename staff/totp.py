"""Enrolling a staff member's TOTP device (django-otp), the second factor the admin asks for."""

from __future__ import annotations

import io

import segno
from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from audit.system import record_command


class EnrolError(Exception):
    pass


def enrol_totp(username: str, *, name: str = "authenticator", replace: bool = False) -> TOTPDevice:
    """A new confirmed TOTP device for ``username``. Refuses when one exists, unless replacing."""
    User = get_user_model()
    try:
        user = User._default_manager.get_by_natural_key(username)
    except User.DoesNotExist:
        raise EnrolError(
            f"No user {username!r}: add them first (in the admin, Users → Add user; a superuser "
            "with `manage.py createsuperuser`)."
        ) from None
    with transaction.atomic():
        existing = TOTPDevice.objects.filter(user=user)
        if existing.exists():
            if not replace:
                raise EnrolError(
                    f"{username} already has a TOTP device; --replace discards it for a new one."
                )
            existing.delete()
        device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        # A second factor is a credential: who gave it counts.
        record_command(
            AuditEvent.Event.RECORD_CHANGED,
            AuditEvent.Outcome.SUCCESS,
            model="otp_totp.TOTPDevice",
            action="replaced" if replace else "enrolled",
            user=username,
        )
    return device


def terminal_qr(uri: str) -> str:
    """``uri`` as a QR code drawn with block characters, for an authenticator app to scan off a
    terminal. It holds the TOTP secret, as the URI does."""
    drawing = io.StringIO()
    segno.make(uri, error="m").terminal(out=drawing, compact=True)
    return drawing.getvalue()
