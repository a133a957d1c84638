"""The staff admin: django-otp's admin site (password and TOTP) and what every page shows of
sealed values and caller numbers.

No admin page prints a digit a caller typed: sealed fields show as "••••" with their key id, caller
numbers as their last 2 digits, and nothing can add, change or delete a row the call flow or the
audit log wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from securegather.models import AuditEvent
from securegather.sealed import MASK, Sealed


class StaffAuthenticationForm(OTPAdminAuthenticationForm):
    """django-otp's admin form, which takes a staff member's only TOTP device as chosen.

    django-otp asks which device to check rather than try a token on each (a miss would count
    against every device's throttle); with one device there is nothing to choose, so sign-in is a
    single form: username, password and the 6-digit code.
    """

    def _verify_token(self, user: Any, token: str, device: Device | None = None) -> Device:
        try:
            return super()._verify_token(user, token, device)
        except forms.ValidationError:
            # Here rather than on django-otp's signal, which does not carry the request.
            AuditEvent.record(
                AuditEvent.Event.STAFF_LOGIN_FAILED,
                AuditEvent.Outcome.FAILURE,
                request=self.request,
                actor=user.get_username(),
                channel=AuditEvent.Channel.ADMIN,
                reason="second_factor",
            )
            raise

    def _chosen_device(self, user: Any) -> Device | None:
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True)[:2])
            if len(devices) == 1:
                return devices[0]
        return device


class StaffAdminSite(OTPAdminSite):
    site_header = "SecureGather"
    site_title = "SecureGather admin"
    login_form = StaffAuthenticationForm

    def __init__(self, name: str = "admin") -> None:
        # The "admin" name keeps every admin: URL name and template working unchanged.
        super().__init__(name)


def masked(value: Sealed | None) -> str:
    """A sealed value as staff see it: the mask and the key that sealed it, never the token."""
    if value is None:
        return "—"
    return f"{MASK} (key {value.key_id})"


def sealed_column(field: str, description: str) -> Callable[[Any, Model], str]:
    """An admin column (or read-only field) showing a SealedField as :func:`masked`."""

    @admin.display(description=description)
    def column(model_admin: Any, obj: Model) -> str:
        return masked(getattr(obj, field))

    return column


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows nobody edits from the admin, superusers included: viewable, never changed."""

    actions = None

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
