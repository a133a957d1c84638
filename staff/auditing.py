"""What staff do in the admin, written to the audit log (PCI DSS 10.2.1.4, 10.2.1.5, 10.2.2):
sign-ins, failures, lockouts and sign-outs (signal receivers here; a wrong or missing one-time
code is recorded by the admin's sign-in form, admin_site.py), and every change made through the
admin.

Each add, change and delete made on the admin's own pages or by its "delete selected" action,
superusers' included (users, groups and permissions, TOTP devices, django-axes records, a user's
"change password" form), leaves a ``LogEntry``; each becomes a ``staff_change`` row in the entry's
transaction (post_save; the action's entries through StrictListAdmin's ``log_deletions``, in
staff/admin_site.py), naming the staff member, the address and browser it came from, the action,
the model, the object's id and the fields changed (their labels), never their values. A staff
member changing their own password writes no ``LogEntry``: the admin site's password change view
records it, and each wrong old password, through :func:`record_own_password_change`. Users added
and passwords changed outside the admin (``createsuperuser``, ``changepassword``, the shell) are
recorded by staff/users.py.

Passwords and one-time codes never reach a row: only the username, when it names an existing user
(a password typed into the username box is not kept). django-axes stores and counts failures under
:func:`axes_username`, which keeps such a password out of its tables too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from axes.signals import user_locked_out
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.admin.views.main import SEARCH_VAR
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.template.response import SimpleTemplateResponse
from django.utils.crypto import salted_hmac

from audit.models import AuditEvent
from audit.phones import e164, mask_phone

UNKNOWN = "unknown"
# The request attribute naming why a staff member was signed out by the service, not by themselves.
LOGOUT_REASON = "securegather_logout_reason"

ACTIONS = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}
# Models whose str() names the object and holds nothing secret (a username, a group's name, a
# device's name and its user's), kept on the row: once the object is deleted, its id names nothing.
# Other models' str() is left out: it is whatever the model chose to print.
NAMED_MODELS = frozenset({"auth.User", "auth.Group", "otp_totp.TOTPDevice"})
ACCESS_ATTEMPT = "axes.AccessAttempt"
# Models whose admin writes its own record_changed row (an account's number, and whether its
# credentials changed): a staff_change beside it would count each change twice.
SELF_AUDITED = frozenset({"accounts.Account"})


def _exists(username: str | None) -> bool:
    if not username:
        return False
    User = get_user_model()
    return User._default_manager.filter(**{User.USERNAME_FIELD: username}).exists()


def _known(username: str | None) -> str:
    return username if username and _exists(username) else UNKNOWN


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The name django-axes counts a sign-in's failures under and stores (AXES_USERNAME_CALLABLE).

    A username that names a user is kept as it is: lockouts stay readable, and
    ``axes_reset_username NAME`` finds them. Anything else (a typo, a password typed into the
    username box) becomes a keyed digest, so it is stored nowhere in clear, yet each typed name
    still has a count of its own: one shared count for all unknown names would lock them all at
    once, and a locked "unknown" beside an unlocked real name tells the two apart.
    """
    field = get_user_model().USERNAME_FIELD
    source = credentials if credentials else getattr(request, "data", request.POST)
    username = source.get(field)
    if not username:
        return None
    if _exists(username):
        return str(username)
    digest = salted_hmac("staff.auditing.axes_username", str(username)).hexdigest()
    return f"{UNKNOWN}:{digest[:16]}"


# The request this thread serves (StaffAuditMiddleware): Django hands a LogEntry's receiver
# none, and a staff_change row needs its origin (PCI DSS 10.2.2).
_serving: ContextVar[HttpRequest | None] = ContextVar("securegather_request", default=None)


@contextmanager
def serving(request: HttpRequest) -> Iterator[None]:
    token = _serving.set(request)
    try:
        yield
    finally:
        _serving.reset(token)


def served() -> HttpRequest | None:
    """The request being served, for rows written by code that is handed none."""
    return _serving.get()


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


def querystring_filters(request: HttpRequest) -> dict[str, str | list[str]]:
    """A list page's querystring for its row: a key given once as its value, a repeated key
    (``?event__exact=verified&event__exact=call_started``, both applied) as all of them. A
    search for a caller's number is kept masked, as the rows keep callers."""
    filters: dict[str, str | list[str]] = {}
    for key, values in request.GET.lists():
        if key == SEARCH_VAR:
            values = [masked_search(value) for value in values]
        filters[key] = values[0] if len(values) == 1 else values
    return filters


# A run of 7 or more digits, as a phone number is typed: "+1 (500) 555-0006", "5005550006",
# "500.555.0006". 7 digits are the shortest number a country dials (E.164 allows fewer with the
# country code, none without).
NUMBER_RUN = re.compile(r"\+?\(?\d(?:[\s().-]*\d){6,}")
# An identifier a search names, kept whole: a Twilio SID ("CA" and 32 hex digits) or an account
# number ("AC87654321", accounts/provisioning.py), both 2 capital letters then letters or digits.
# The row of a search must name the call or the account looked at; a number typed starts with
# a digit, "+" or "(".
IDENTIFIER = re.compile(r"(?<![0-9A-Za-z])[A-Z]{2}[0-9A-Za-z]{1,32}(?![0-9A-Za-z])")


def masked_search(search: str) -> str:
    """A search as a row may keep it: every run of 7 or more digits (a caller's number, with or
    without its country code, mistyped or among other words) masked to its last 2 digits, but
    for the CallSids and account numbers it names."""

    def mask(run: re.Match[str]) -> str:
        number = e164(run.group())
        return mask_phone(number or re.sub(r"\D", "", run.group()))

    kept = 0
    masked: list[str] = []
    for name in IDENTIFIER.finditer(search):
        masked += [NUMBER_RUN.sub(mask, search[kept : name.start()]), name.group()]
        kept = name.end()
    return "".join([*masked, NUMBER_RUN.sub(mask, search[kept:])])


def record_page_view(request: HttpRequest, response: HttpResponse, **detail: Any) -> None:
    """A page of records shown to a staff member, as a ``record_viewed`` row written once the page
    is rendered: the row is not on the page it records (the audit log's), and a page that fails
    to render showed nothing. Redirects (a bad filter's ?e=1) and refusals show no records and
    write none."""
    if request.method != "GET" or response.status_code != 200:
        return

    def record(rendered: Any) -> None:
        record_staff_action(
            request, AuditEvent.Event.RECORD_VIEWED, AuditEvent.Outcome.INFO, **detail
        )

    if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
        response.add_post_render_callback(record)
    else:
        record(response)


def record_own_password_change(request: HttpRequest, *, changed: bool) -> None:
    """The signed-in staff member changed their password, or gave a wrong old one."""
    record_staff_action(
        request,
        AuditEvent.Event.STAFF_CHANGE,
        AuditEvent.Outcome.SUCCESS if changed else AuditEvent.Outcome.FAILURE,
        action="password_changed",
        model=get_user_model()._meta.label,
        object_id=str(request.user.pk),
        **({} if changed else {"reason": "old_password"}),
    )


def _model_label(content_type_id: int | None) -> str:
    if content_type_id is None:
        return ""
    content_type = ContentType.objects.get_for_id(content_type_id)  # cached
    model = content_type.model_class()
    return model._meta.label if model else f"{content_type.app_label}.{content_type.model}"


def _change_summary(message: str) -> dict[str, Any]:
    """The field names in a LogEntry's change message, and the kinds of related (inline) objects
    added, changed or deleted: never a value, and never an inline object's str(), which the
    message holds too."""
    try:
        parts = json.loads(message) if message else []
    except ValueError:
        return {}  # free text, not the admin's: it could say anything
    if not isinstance(parts, list):
        return {}
    fields: set[str] = set()
    related: list[dict[str, Any]] = []
    # The admin writes [{"changed": {"fields": [...]}}, {"added": {"name": ..., "object": ...}}]
    for part in parts:
        for action, info in part.items() if isinstance(part, dict) else ():
            if not isinstance(info, dict):
                continue
            names = sorted(str(name) for name in info.get("fields", []))
            if "name" in info:  # an inline's object
                related.append({"action": action, "model": str(info["name"]), "fields": names})
            else:
                fields.update(names)
    return {"fields": sorted(fields), **({"related": related} if related else {})}


def _access_attempt_username(object_id: str) -> str:
    # The entry is written before the deletion, so the row is still there. An existing user's
    # name only: rows written before axes_username may hold what someone typed.
    from axes.models import AccessAttempt

    name = AccessAttempt.objects.filter(pk=object_id).values_list("username", flat=True).first()
    return _known(name)


def record_log_entry(entry: LogEntry) -> None:
    """One admin LogEntry as a ``staff_change`` row, in the transaction that wrote the entry."""
    model = _model_label(entry.content_type_id)
    if model in SELF_AUDITED:
        return
    # As stored: the admin hands the entry the object's pk, which the column keeps as text.
    object_id = "" if entry.object_id is None else str(entry.object_id)
    detail: dict[str, Any] = {
        "action": ACTIONS.get(entry.action_flag, str(entry.action_flag)),
        "model": model,
        "object_id": object_id,
    }
    if model in NAMED_MODELS:
        detail["object"] = entry.object_repr
    elif model == ACCESS_ATTEMPT and object_id:
        detail["username"] = _access_attempt_username(object_id)
    detail.update(_change_summary(entry.change_message))
    _record(
        AuditEvent.Event.STAFF_CHANGE,
        AuditEvent.Outcome.SUCCESS,
        served(),  # a LogEntry carries no request: its origin is the one being served
        entry.user.get_username(),
        **detail,
    )


@receiver(post_save, sender=LogEntry, dispatch_uid="staff.staff_change")
def staff_change(sender: Any, instance: LogEntry, created: bool, raw: bool, **kwargs: Any) -> None:
    if created and not raw:
        record_log_entry(instance)


@receiver(user_logged_in, dispatch_uid="staff.staff_login")
def staff_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    device = getattr(user, "otp_device", None)
    _record(
        AuditEvent.Event.STAFF_LOGIN,
        AuditEvent.Outcome.SUCCESS,
        request,
        user.get_username(),
        second_factor=type(device).__name__ if device else None,
    )


@receiver(user_login_failed, dispatch_uid="staff.staff_login_failed")
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


@receiver(user_locked_out, dispatch_uid="staff.staff_locked_out")
def staff_locked_out(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str, **kwargs: Any
) -> None:
    _record(
        AuditEvent.Event.STAFF_LOCKED_OUT, AuditEvent.Outcome.FAILURE, request, _known(username)
    )


@receiver(user_logged_out, dispatch_uid="staff.staff_logout")
def staff_logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        actor = user.get_username()
        # Why the session was ended for them, when it was (admin_site's password change).
        reason = getattr(request, LOGOUT_REASON, None)
        detail = {"reason": reason} if reason else {}
        _record(AuditEvent.Event.STAFF_LOGOUT, AuditEvent.Outcome.INFO, request, actor, **detail)
