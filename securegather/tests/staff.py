"""Staff users for admin tests: made with a TOTP device, and clients signed in with both factors."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff.roles import ensure_ops_group

PASSWORD = "correct horse battery staple"


def make_staff(username: str, *, superuser: bool = False, ops: bool = False) -> User:
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    else:
        user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
        user.is_staff = True
        user.save()
    if ops:
        user.groups.add(ensure_ops_group())
    TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    return user


def totp_now(user: User) -> str:
    device = TOTPDevice.objects.get(user=user)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def verified_client(user: User) -> Client:
    """A client past both factors, as after a real sign-in."""
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client
