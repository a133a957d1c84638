"""Call sessions in the admin: what happened on a call, with its sealed digits masked."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from audit.models import AuditEvent
from audit.phones import mask_phone
from calls.models import CallSession
from staff.admin import in_utc_text, link_to_account, link_to_call_trail
from staff.admin_site import CallerSearch, ReadOnlyAdmin, ViewsAudited, sealed_column

# The audit rows shown on a call's page; the audit log's own page has the rest.
TRAIL_ROWS = 50


@admin.register(CallSession)
class CallSessionAdmin(CallerSearch, ViewsAudited, ReadOnlyAdmin):
    list_display = [
        "call_sid",
        "caller_masked",
        "state",
        "outcome",
        "account_link",
        "card_sealed",
        "pin_sealed",
        "created_utc",
        "ended_utc",
    ]
    list_filter = ["state", "outcome", "created_at"]
    # Exact, as Twilio and the accounts spell them. call_sid's unique index serves it; sessions
    # are purged after a day (purge_sessions), so account_number needs none. A caller's number
    # is matched through its digest (CallerSearch).
    search_fields = ["call_sid__exact", "account_number__exact"]
    search_help_text = (
        "Exact caller number with its country code (+1 555 123 4567), CallSid or account number."
    )
    date_hierarchy = "created_at"

    class Media:
        css = {"all": ["staff/lists.css"]}

    fields = readonly_fields = (
        "call_trail",
        "account_sid",
        "caller_masked",
        "language",
        "state",
        "outcome",
        "tries",
        "card_sealed",
        "pin_sealed",
        "account_link",
        "created_at",
        "updated_at",
        "ended_at",
        "audit_trail",
    )

    @admin.display(description="caller")
    def caller_masked(self, obj: CallSession) -> str:
        return mask_phone(obj.caller)

    @admin.display(description="created (UTC)", ordering="created_at")
    def created_utc(self, obj: CallSession) -> str:
        return in_utc_text(obj.created_at)

    @admin.display(description="ended (UTC)", ordering="ended_at")
    def ended_utc(self, obj: CallSession) -> str:
        return in_utc_text(obj.ended_at)

    @admin.display(description="account", ordering="account_number")
    def account_link(self, obj: CallSession) -> str:
        return link_to_account(obj.account_number)

    card_sealed = sealed_column("card", "card last 4")
    pin_sealed = sealed_column("pin", "PIN")

    @admin.display(description="audit trail")
    def audit_trail(self, obj: CallSession) -> str:
        rows = AuditEvent.objects.filter(call_sid=obj.call_sid).order_by("id")[:TRAIL_ROWS]
        url = reverse("admin:audit_auditevent_changelist")
        lines = format_html_join(
            "",
            "<li>{} {} ({})</li>",
            ((f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.event, e.outcome) for e in rows),
        )
        return format_html(
            '<ul class="audit-trail">{}</ul><a href="{}?{}">All audit rows for this call</a>',
            lines,
            url,
            urlencode({"q": obj.call_sid}),
        )

    @admin.display(description="CallSid")
    def call_trail(self, obj: CallSession) -> str:
        return link_to_call_trail(obj.call_sid)

    def viewed(self, obj: CallSession) -> dict[str, Any]:
        return {"call_sid": obj.call_sid, "caller": obj.caller}  # the row masks the number
