"""The audit log in the admin: searchable and filterable, exportable as CSV, never editable."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any, Literal, cast

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList

# Its import registers User's admin, which StaffUserAdmin below replaces.
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django_otp import user_has_device

from audit.chain import CHAINED_FIELDS
from audit.models import AuditEvent
from staff.admin_site import (
    NUMBER_IN_ADDRESS,
    BoundedChangeList,
    CallerSearch,
    ReadOnlyAdmin,
    ViewsAudited,
    looks_like_number,
)
from staff.auditing import querystring_filters, record_staff_action

# Every column a MAC covers, then the chain itself: what an assessor needs to re-verify a row.
CSV_FIELDS = ["id", *CHAINED_FIELDS, "prev_mac", "mac"]
# A cell starting with one of these runs as a formula in a spreadsheet (CSV injection); user
# agents and details come from outside, so such cells get a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A cell that already starts with an apostrophe gets one too, so the rule reverses: a cell that
# begins with an apostrophe had one added, and dropping exactly one gives back the value its MAC
# covers.
ESCAPED_STARTS = (*FORMULA_STARTS, "'")


class Echo:
    """A file-like object whose write hands the line back, for csv.writer into a stream."""

    def write(self, value: str) -> str:
        return value


def csv_cell(value: Any) -> str:
    """A value as a CSV cell. One starting with a formula character or an apostrophe gets an
    apostrophe in front: a cell that begins with an apostrophe had one added; strip exactly one."""
    if value is None:
        return ""
    if isinstance(value, dict):
        value = json.dumps(value, sort_keys=True)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(ESCAPED_STARTS) else text


def csv_lines(rows: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(CSV_FIELDS)
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow([csv_cell(getattr(row, name)) for name in CSV_FIELDS])


class CalendarQuerySet(QuerySet[AuditEvent]):
    """Rows whose ``datetimes()`` by year, month or day is the calendar from the first row to
    the last.

    The admin's date hierarchy asks for the distinct years, months or days of the rows it shows,
    which is a read of every one of them: half a second a million rows, per page. Here it gets
    every year, month or day between the first row and the last instead (each found through the
    index on created_at): a day without rows is listed too, and opens on an empty page.
    """

    def datetimes(
        self,
        field_name: str,
        kind: Literal["year", "month", "week", "day", "hour", "minute", "second"],
        order: Literal["ASC", "DESC"] = "ASC",
        tzinfo: Any = None,
    ) -> Any:
        if kind not in ("year", "month", "day") or order != "ASC" or tzinfo is not None:
            return super().datetimes(field_name, kind, order, tzinfo)
        times = self.order_by(field_name).values_list(field_name, flat=True)
        first, last = times.first(), times.reverse().first()
        if first is None or last is None:
            return []
        days = calendar(timezone.localdate(first), timezone.localdate(last), kind)
        return [timezone.make_aware(datetime.combine(day, time.min)) for day in days]


def calendar(first: date, last: date, kind: str) -> list[date]:
    """The first day of every year, month or day (``kind``) from ``first`` to ``last``."""
    if kind == "year":
        return [date(year, 1, 1) for year in range(first.year, last.year + 1)]
    if kind == "month":
        months = range(first.year * 12 + first.month - 1, last.year * 12 + last.month)
        return [date(month // 12, month % 12 + 1, 1) for month in months]
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class CalendarChangeList(BoundedChangeList):
    """The changelist (and its CSV export) over a CalendarQuerySet."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        rows = super().get_queryset(request, exclude_parameters)
        return CalendarQuerySet(rows.model, query=rows.query, using=rows.db)


class CappedCountPaginator(Paginator):
    """Counts no more than LIMIT + 1 rows: a COUNT(*) of a year's log reads all of it, per page.

    Past the limit, the page links stop at the limit's page, pages past it cannot be reached,
    and the changelist says "more than" (the templates in
    templates/admin/audit/auditevent/): filters and search narrow the rest.
    """

    LIMIT = 10_000

    @cached_property
    def count(self) -> int:
        rows = cast("QuerySet[AuditEvent]", self.object_list)  # the changelist's, a QuerySet
        return rows.order_by()[: self.LIMIT + 1].count()


# The fields of a row's page shown as a link or formatted, by the name of their column.
DETAIL_FIELDS = {"detail": "detail_json", "call_sid": "call_link", "account_number": "account_link"}


def in_utc_text(moment: datetime | None) -> str:
    """A time as the admin's lists show it: to the second, in UTC, whatever the viewer's locale,
    as the audit log's rows compare."""
    return "—" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def link_to_call_trail(call_sid: str) -> str:
    """A CallSid as a link to its call's trail: the audit log's rows for that call."""
    if not call_sid:
        return ""
    url = reverse("admin:audit_auditevent_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode({"q": call_sid}), call_sid)


def link_to_account(number: str) -> str:
    """An account number as a link to that account in the admin (found by its number: audit rows
    name accounts by number, and outlive them)."""
    if not number:
        return ""
    url = reverse("admin:accounts_account_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode({"q": number}), number)


class FailedVerifications(admin.SimpleListFilter):
    """The audit log's failed verifications (``?verification=failed``): the rows the dashboard's
    failures per hour count, and the list each hour's bar links to."""

    title = "verification"
    parameter_name = "verification"
    FAILED = "failed"
    # A wrong card or PIN, or a caller or account refused for too many of them.
    EVENTS = (
        AuditEvent.Event.NOT_FOUND,
        AuditEvent.Event.LOCKED_OUT,
        AuditEvent.Event.RETRIES_EXHAUSTED,
    )

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(self.FAILED, "failed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == self.FAILED:
            return queryset.filter(event__in=self.EVENTS)
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(CallerSearch, ViewsAudited, ReadOnlyAdmin):
    list_display = [
        "time_utc",
        "event",
        "outcome",
        "channel",
        "actor",
        "call_link",
        "caller",
        "account_link",
        "key_id",
    ]
    list_filter = ["event", FailedVerifications, "outcome", "channel", "created_at"]
    # Exact matches, which their indexes serve; "=field" is iexact (UPPER(...) = UPPER(...)),
    # which none does: a search would read the whole log.
    # A caller's number is matched through its digest (CallerSearch), under every ring key.
    search_fields = ["call_sid__exact", "account_number__exact", "actor__exact"]
    search_help_text = (
        "Exact caller number with its country code (+1 555 123 4567), CallSid, account number "
        "or staff username."
    )
    date_hierarchy = "created_at"
    show_full_result_count = False  # a year of rows: no second COUNT(*) per page
    paginator = CappedCountPaginator
    # What a MAC covers, in its order (the detail as formatted JSON), then the chain.
    fields = readonly_fields = (
        *(DETAIL_FIELDS.get(name, name) for name in CHAINED_FIELDS),
        "prev_mac",
        "mac",
    )

    class Media:
        css = {"all": ["staff/lists.css"]}

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CalendarChangeList

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_csv),
            name="audit_auditevent_export",
        )
        return [export, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        extra_context = {
            **(extra_context or {}),
            "can_export": request.user.has_perm("audit.export_auditevent"),
        }
        return super().changelist_view(request, extra_context)

    def export_csv(self, request: HttpRequest) -> StreamingHttpResponse | HttpResponseBadRequest:
        """The changelist's rows, with its filters and search, streamed as CSV."""
        if not (
            self.has_view_permission(request) and request.user.has_perm("audit.export_auditevent")
        ):
            raise PermissionDenied
        if looks_like_number(request.GET.get(SEARCH_VAR, "").strip()):
            # As the list refuses it (NumberSearch): the export link carries the digests.
            return HttpResponseBadRequest(NUMBER_IN_ADDRESS)
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter.")
        # The rows as they stand now: a stream of a growing table ends where it started, and does
        # not include the row recording this export.
        newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        rows = changelist.get_queryset(request).filter(id__lte=newest).order_by("id")
        record_staff_action(
            request,
            AuditEvent.Event.EXPORTED,
            AuditEvent.Outcome.SUCCESS,
            what="audit_log",
            filters=querystring_filters(request),
            up_to_row=newest,
        )
        name = f"audit-log-{timezone.now():%Y%m%dT%H%M%SZ}.csv"
        response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @admin.display(description="time (UTC)", ordering="created_at")
    def time_utc(self, obj: AuditEvent) -> str:
        # To the second, in UTC, whatever the viewer's locale: what an assessor compares.
        return in_utc_text(obj.created_at)

    @admin.display(description="CallSid", ordering="call_sid")
    def call_link(self, obj: AuditEvent) -> str:
        return link_to_call_trail(obj.call_sid)

    @admin.display(description="account", ordering="account_number")
    def account_link(self, obj: AuditEvent) -> str:
        return link_to_account(obj.account_number)

    @admin.display(description="detail")
    def detail_json(self, obj: AuditEvent) -> str:
        return format_html("<code>{}</code>", json.dumps(obj.detail, sort_keys=True))


class StaffUserAdmin(auth_admin.UserAdmin):
    """Django's user admin, which also says whether each user has an authenticator: without
    one, a staff member cannot sign in (``manage.py enrol_totp``)."""

    list_display = ("username", "email", "first_name", "last_name", "is_staff", "mfa_enrolled")
    readonly_fields = ("mfa_enrolled",)
    fieldsets = (
        *(auth_admin.UserAdmin.fieldsets or ()),
        ("Second factor", {"fields": ("mfa_enrolled",)}),
    )

    @admin.display(description="MFA enrolled", boolean=True)
    def mfa_enrolled(self, obj: Any) -> bool:
        return user_has_device(obj, confirmed=True)


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), StaffUserAdmin)
