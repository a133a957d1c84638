"""The staff admin: django-otp's admin site (password and TOTP) and what every page shows of
sealed values and caller numbers.

No admin page prints a digit a caller typed: sealed fields show as "••••" with their key id, caller
numbers as their last 2 digits, and nothing can add, change or delete a row the call flow or the
audit log wrote.

Every changelist (StrictListAdmin) takes from the querystring only what its own page offers: its
list filters, its date navigation and a search of at most MAX_SEARCH_WORDS words. Django's default
takes any lookup on any of the model's columns (``?caller__startswith=+1``), which would read
masked and sealed columns back a character at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC
from itertools import islice
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import FieldListFilter, SimpleListFilter
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import DateTimeField, Model, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.decorators import method_decorator
from django.utils.text import smart_split
from django.views.decorators.http import require_POST
from django_otp import devices_for_user, user_has_device
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import NUL, AuditEvent
from audit.phones import caller_digests
from keys.sealed import MASK, Sealed
from staff.auditing import (
    LOGOUT_REASON,
    querystring_filters,
    record_own_password_change,
    record_page_view,
)
from staff.models import WrongOldPasswords

# What a staff member with the right password and no authenticator reads: why they cannot go
# on, and who can help. A device is enrolled from the command line only (docs/operations.md).
NO_AUTHENTICATOR = (
    "This account has no authenticator yet, so it cannot sign in. Ask an administrator to "
    "enrol one for you (manage.py enrol_totp %(username)s), add it to an authenticator app, "
    "then sign in with the 6-digit code it shows."
)


class StaffAuthenticationForm(OTPAdminAuthenticationForm):
    """django-otp's admin form, which takes a staff member's only TOTP device as chosen.

    django-otp asks which device to check rather than try a token on each (a miss would count
    against every device's throttle); with one device there is nothing to choose, so sign-in is a
    single form: username, password and the 6-digit code.
    """

    def confirm_login_allowed(self, user: Any) -> None:
        try:
            super().confirm_login_allowed(user)
        except forms.ValidationError:
            # The right password of a user who is not staff: no failed authentication, so no
            # signal, yet a password tried.
            self._record_refusal(user, reason="not_staff")
            raise

    def clean_otp(self, user: Any) -> None:
        if user is not None and not user_has_device(user, confirmed=True):
            # django-otp would answer "Please select a device." above an empty list.
            self._record_refusal(user, reason="second_factor", otp_error="no_device")
            raise forms.ValidationError(
                NO_AUTHENTICATOR, code="no_device", params={"username": user.get_username()}
            )
        try:
            super().clean_otp(user)
        except forms.ValidationError as error:
            # Every refusal after a right password: a wrong code, and no code at all, which
            # would otherwise try a password without a trace. Here rather than on django-otp's
            # signal, which does not carry the request and is not sent for a missing code.
            # django-otp's reason ("invalid_token", "token_required", ...), never the code.
            self._record_refusal(
                user, reason="second_factor", otp_error=error.code or "not_allowed"
            )
            raise

    def _record_refusal(self, user: Any, **detail: str) -> None:
        AuditEvent.record(
            AuditEvent.Event.STAFF_LOGIN_FAILED,
            AuditEvent.Outcome.FAILURE,
            request=self.request,
            actor=user.get_username(),
            channel=AuditEvent.Channel.ADMIN,
            **detail,
        )

    def _update_form(self, user: Any) -> None:
        super()._update_form(user)
        # django-otp writes the password back into the page for a second round with the code
        # alone; here the code comes with the password, so the page keeps no password in it.
        self.fields["password"].widget.render_value = False

    def _chosen_device(self, user: Any) -> Device | None:
        chosen = self.cleaned_data.get("otp_device")
        if chosen and chosen not in {d.persistent_id for d in devices_for_user(user, None)}:
            # Not one of the user's devices: django-otp's lookup fails on an id naming a model
            # that is no device ("auth.user/1": an AttributeError, a 500 with no audit row).
            return None
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True)[:2])
            if len(devices) == 1:
                return devices[0]
        return device


# Wrong old passwords a session may give on the password change form before it is signed out.
OLD_PASSWORD_TRIES = 5


class StaffAdminSite(OTPAdminSite):
    site_header = "SecureGather"
    site_title = "SecureGather admin"
    login_form = StaffAuthenticationForm
    # django-otp's page, less its device list and challenge button: a TOTP device needs neither.
    login_template = "admin/staff_login.html"
    # The service serves no site of its own: no "View site" link to a 404.
    site_url = None
    # The lists of calls and audit rows need the width (a 1,366 px screen); the first page
    # lists every model, and each page's breadcrumbs lead back to it.
    enable_nav_sidebar = False
    # The first page is the ops desk's when the desk app is installed: it sets index_template
    # from its AppConfig.ready(), as it draws from the apps above this one.

    def __init__(self, name: str = "admin") -> None:
        # The "admin" name keeps every admin: URL name and template working unchanged.
        super().__init__(name)

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        """Every admin here is a StrictListAdmin, those other apps register included (users,
        groups, TOTP devices, django-axes' records): Django's default would take a lookup on
        any column of theirs, ``?password__startswith=`` or ``?key__startswith=``."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, StrictListAdmin):
            admin_class = type(
                admin_class.__name__,
                (StrictListAdmin, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)

    def password_change(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Django's own-password view, audited: it writes no LogEntry (a superuser setting
        someone's password through Users does, and staff/auditing.py records that)."""
        # The hash, to tell a change; admin_view lets only a signed-in staff member here.
        before = getattr(request.user, "password", None)
        session_key = request.session.session_key or ""  # "" names no session
        # One transaction: a new password is not kept without its audit row, and the session's
        # row stays locked from before its old password is checked until its count is kept.
        with transaction.atomic():
            if request.method == "POST" and not WrongOldPasswords.session_locked(session_key):
                # Signed out since this request began, by a try sent alongside: not one more.
                request.session.flush()
                return redirect("admin:login")
            response = super().password_change(request, extra_context)
            if getattr(request.user, "password", None) != before:
                # In a new session, with no wrong old password counted: the old one is deleted.
                record_own_password_change(request, changed=True)
                return response
            form = (getattr(response, "context_data", None) or {}).get("form")
            if form is None or not form.has_error("old_password", "password_incorrect"):
                return response
            record_own_password_change(request, changed=False)
            # Not counted by django-axes, which would store the form's passwords: counted here,
            # per session, so that whoever holds a signed-in session cannot guess at the
            # password to take the account for good. At the limit the session ends: the next
            # try takes the password and a one-time code, and axes counts those.
            if WrongOldPasswords.add_one(session_key) < OLD_PASSWORD_TRIES:
                return response
            setattr(request, LOGOUT_REASON, "wrong_old_passwords")
            logout(request)  # writes staff_logout, with that reason
        messages.error(request, "Too many wrong passwords: sign in again.")
        return redirect("admin:login")


def masked(value: Sealed | None) -> str:
    """A sealed value as staff see it: the mask and the key that sealed it, never the token.
    A value sealed to the user's backend (keys.hpke) names the backend's key: no key of the
    ring can open it."""
    if value is None:
        return "—"
    if (backend_kid := value.backend_kid) is not None:
        return f"{MASK} (sealed to backend key {backend_kid})"
    return f"{MASK} (key {value.key_id})"


def sealed_column(field: str, description: str) -> Callable[[Any, Model], str]:
    """An admin column (or read-only field) showing a SealedField as :func:`masked`."""

    @admin.display(description=description)
    def column(model_admin: Any, obj: Model) -> str:
        return masked(getattr(obj, field))

    return column


# Each word of a search is one more condition: thousands of them overflow SQLite's expression tree.
MAX_SEARCH_WORDS = 10
TOO_MANY_WORDS = f"Search for at most {MAX_SEARCH_WORDS} words."


def too_many_words(search: str) -> bool:
    """Whether a search has more words than MAX_SEARCH_WORDS, split as Django's search splits."""
    return len(list(islice(smart_split(search), MAX_SEARCH_WORDS + 1))) > MAX_SEARCH_WORDS


def filter_parameters(model_admin: admin.ModelAdmin, request: HttpRequest, item: Any) -> set[str]:
    """The querystring keys one list_filter entry reads, as ChangeList.get_filters builds it."""
    model = model_admin.model
    if isinstance(item, type) and issubclass(item, SimpleListFilter):
        # Known without building it: building runs its lookups(), which may query.
        return {item.parameter_name} if item.parameter_name else set()
    if callable(item):
        return set(item(request, {}, model, model_admin).expected_parameters())
    path, make = item if isinstance(item, list | tuple) else (item, FieldListFilter.create)
    field = get_fields_from_path(model, path)[-1]
    spec = make(field, request, {}, model, model_admin, field_path=path)
    # The bare name too (?event=verified): an exact match, like the filter's own __exact.
    return {path, *spec.expected_parameters()}


def page_lookups(model_admin: admin.ModelAdmin, request: HttpRequest) -> set[str]:
    """Every lookup the changelist's own filter links and date navigation put in its URL."""
    lookups: set[str] = set()
    for item in model_admin.get_list_filter(request):
        lookups |= filter_parameters(model_admin, request, item)
    if model_admin.date_hierarchy:
        # Django turns these into __gte and __lt itself, after lookup_allowed.
        lookups |= {f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")}
    return lookups


class BoundedChangeList(ChangeList):
    """A changelist whose date navigation and filters refuse dates past the calendar's ends, and
    whose filters refuse a value with a NUL character.

    Django turns ``?created_at__year=9999&created_at__month=12&created_at__day=31`` into the
    range up to the next day, which is past datetime's last: an OverflowError (a 500). Here it
    is a bad lookup, as an impossible date is: the changelist redirects to ``?e=1``.
    """

    def get_filters(self, request: HttpRequest) -> Any:
        try:
            filters = super().get_filters(request)
            if self.date_hierarchy:
                in_utc(filters[2], self.date_hierarchy)
            bounds_in_utc(filters[0])
        except (OverflowError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error
        if any(NUL in value for values in self.get_filters_params().values() for value in values):
            # PostgreSQL refuses a NUL in a query's text (a DataError, a 500), and no stored value
            # holds one: a bad lookup, as on SQLite, where it would match nothing.
            raise IncorrectLookupParameters("a filter's value holds a NUL character")
        return filters


def in_utc(lookups: dict[str, Any], field: str) -> None:
    """Raise OverflowError if the date navigation's bounds have no UTC time, as the database gets
    them: in a zone ahead of UTC, 1 January of year 1 starts in year 0."""
    for op in ("gte", "lt"):
        for bound in lookups.get(f"{field}__{op}", []):
            bound.astimezone(UTC)


def bounds_in_utc(specs: list[Any]) -> None:
    """Raise OverflowError if a date filter's bound (its own ``?created_at__gte=``, which may carry
    a UTC offset: "0001-01-01 00:00:00+01:00") has no UTC time, as SQLite gets it (an error as the
    query is sent, a 500). PostgreSQL would take it; both refuse it here, alike."""
    for spec in specs:
        if not isinstance(getattr(spec, "field", None), DateTimeField):
            continue
        for values in spec.used_parameters.values():
            for value in values if isinstance(values, list) else [values]:
                try:
                    moment = parse_datetime(value) if isinstance(value, str) else None
                except ValueError:
                    continue  # not a date: the filter refuses it itself
                if moment is None:
                    continue
                if timezone.is_naive(moment):
                    moment = timezone.make_aware(moment)  # as Django makes it for the query
                moment.astimezone(UTC)


class StrictListAdmin(admin.ModelAdmin):
    """An admin whose changelist (and anything built on it) takes only the lookups its own page
    offers, and a search of at most MAX_SEARCH_WORDS words."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # Anything else is refused as Django refuses a lookup: DisallowedModelAdminLookup, a 400.
        # Django asks once per value in the querystring, and building a related field's filter
        # reads its choices: worked out once a request.
        known: dict[type[Model], set[str]] = request.__dict__.setdefault("_page_lookups", {})
        if self.model not in known:
            known[self.model] = page_lookups(self, request)
        return lookup in known[self.model]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return BoundedChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        if too_many_words(search_term):
            raise IncorrectLookupParameters(TOO_MANY_WORDS)
        return super().get_search_results(request, queryset, search_term)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST":
            allowed = self.get_actions(request)
            if any(name and name not in allowed for name in request.POST.getlist("action")):
                # An action the page does not offer this staff member (their role lacks its
                # permission, or the list has none): Django would answer "No action selected"
                # and leave no trace. Refused as a page their role refuses is: a 403, audited.
                raise PermissionDenied
        if too_many_words(request.GET.get(SEARCH_VAR, "")):
            # Django answers with the list at ?e=1, which no longer shows the search: say why.
            messages.error(request, TOO_MANY_WORDS)
        return super().changelist_view(request, extra_context)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> list[LogEntry]:
        """The "delete selected" action's entries, each saved on its own so that each becomes a
        ``staff_change`` row: Django writes them with one ``bulk_create``, which sends no
        ``post_save`` for staff/auditing.py to see. Their rows go to the chain in one append."""
        entries: list[LogEntry] = []
        with transaction.atomic(), AuditEvent.batched():
            for obj in queryset:
                # A list of one, as Django's own delete view hands it (the stubs say QuerySet).
                entries += super().log_deletions(request, [obj])  # type: ignore[arg-type]
        return entries


# A search for a caller number, as the changelist's URL carries it: "caller:" and the number's
# digests (kid:hex, comma separated), never the number.
CALLER_SEARCH = "caller:"
CALLER_DIGEST = re.compile(r"[A-Za-z0-9_-]{1,32}:[0-9a-f]{64}")
# At most as many digests as keys in a ring, with room to spare.
MAX_CALLER_DIGESTS = 16


def searched_digests(search: str) -> list[str] | None:
    """The caller digests a ``caller:`` search asks for (an empty list when it is malformed), or
    None for any other search."""
    if not search.startswith(CALLER_SEARCH):
        return None
    parts = search[len(CALLER_SEARCH) :].split(",")
    if len(parts) > MAX_CALLER_DIGESTS:
        return []
    return [part for part in parts if CALLER_DIGEST.fullmatch(part)]


# Text that reads as a phone number: digits, with the spaces, "+", brackets, dashes and dots
# people type between them, and at least as many digits as the shortest number dialled (7).
NUMBER_LIKE = re.compile(r"[\d\s+().-]+")
NUMBER_DIGITS = 7
# What ops read when a number comes in a page's address (a hand-made or old link): the list is
# shown without it, and nothing keeps it.
NUMBER_IN_ADDRESS = (
    "A caller's number is never searched from a page's address: type it into the search box."
)
NUMBER_NOT_FOUND = (
    "Type the caller's full number with its country code (+1 555 123 4567): a number without "
    "it could be anyone's."
)


def looks_like_number(text: str) -> bool:
    """Whether ``text`` reads as a phone number, in any spelling, valid or not."""
    return bool(NUMBER_LIKE.fullmatch(text)) and sum(c.isdigit() for c in text) >= NUMBER_DIGITS


class NumberSearch(admin.ModelAdmin):
    """A changelist searched by a caller's number that no address ever carries.

    Its search box (admin/number_search_form.html, used by the model's ``search_form.html``)
    posts, CSRF-protected, to the admin's ``search/`` view, which turns a number into what finds
    its rows (:meth:`number_search`) and redirects to the list with that as ``q``: POST, redirect,
    GET. A GET whose ``q`` reads as a number is not searched: ops are told to use the box.

    An admin adopts it with a :meth:`number_search` and its model's search form template,
    ``admin/<app>/<model>/search_form.html``: ``{% extends "admin/number_search_form.html" %}``.
    """

    def number_search(self, text: str) -> str | None:
        """The ``q`` that finds the rows of the number ``text``, holding no number; None when
        ``text`` is not a number this list can find."""
        raise NotImplementedError

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_search"
        search = path("search/", self.admin_site.admin_view(self.search_view), name=name)
        return [search, *super().get_urls()]

    def changelist_url(self, query: QueryDict) -> str:
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
            current_app=self.admin_site.name,
        )
        return f"{url}?{query.urlencode()}" if query else url

    @method_decorator(require_POST)
    def search_view(self, request: HttpRequest) -> HttpResponse:
        """The search box's text, as the list's ``q``: a number as :meth:`number_search` has it,
        anything else as typed; a number this list cannot find, not at all."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        query = QueryDict(mutable=True)
        for key, values in request.POST.lists():
            if key not in (SEARCH_VAR, "csrfmiddlewaretoken"):
                query.setlist(key, values)  # the list's filters, kept
        text = request.POST.get(SEARCH_VAR, "").strip()
        found = self.number_search(text) if text else None
        if found is not None:
            query[SEARCH_VAR] = found
        elif looks_like_number(text):
            messages.error(request, NUMBER_NOT_FOUND)
        elif text:
            query[SEARCH_VAR] = text
        return redirect(self.changelist_url(query))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if looks_like_number(request.GET.get(SEARCH_VAR, "").strip()):
            # Already in an address (history, a proxy's log): not in one more, nor in a row.
            messages.error(request, NUMBER_IN_ADDRESS)
            query = request.GET.copy()
            del query[SEARCH_VAR]
            return redirect(self.changelist_url(query))
        return super().changelist_view(request, extra_context)


class CallerSearch(NumberSearch):
    """A changelist of rows with a ``caller_digest`` that finds them by the caller's full number.

    The number is matched exactly, in E.164, through its keyed digest under every key of the
    ring, so the rows store and show only the masked number, and the list's address carries the
    digests (``?q=caller:kid:hex,...``), never the number.
    """

    def number_search(self, text: str) -> str | None:
        digests = caller_digests(text)
        return CALLER_SEARCH + ",".join(digests) if digests else None

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        digests = searched_digests(search_term.strip())
        if digests is None:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(caller_digest__in=digests), False


class ViewsAudited(admin.ModelAdmin):
    """An admin whose list pages (with their filters and search) and object pages each write a
    ``record_viewed`` row once shown: who looked at which records, and when (PCI DSS 10.2.1.1
    for calls and accounts, 10.2.1.3 for the audit log)."""

    def viewed(self, obj: Any) -> dict[str, Any]:
        """What names ``obj`` on the row recording its page."""
        return {"object_id": str(obj.pk)}

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        record_page_view(
            request, response, model=self.model._meta.label, filters=querystring_filters(request)
        )
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, object_id)
            if obj is not None:
                record_page_view(
                    request, response, model=self.model._meta.label, **self.viewed(obj)
                )
        return response


class ReadOnlyAdmin(StrictListAdmin):
    """Rows nobody edits from the admin, superusers included: viewable, never changed."""

    actions = None

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
