"""Accounts and lockouts in the admin.

An account's card last-4 and PIN are write-only: typed into password inputs that are never filled
back in, sealed on save, and shown afterwards only as "••••" with their key id. Its caller numbers
are shown in full only in the form of someone who may change them; anyone else sees each masked
to its last 2 digits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from accounts.models import Account, Lockout, is_four_digits
from audit.models import AuditEvent
from audit.phones import e164, mask_phone
from staff.admin_site import StrictListAdmin, ViewsAudited, sealed_column
from staff.auditing import querystring_filters, record_page_view, record_staff_action

# Form-only fields: the model's own card_last4 and pin hold tokens and are not editable.
CREDENTIALS = ("new_card_last4", "new_pin")


def four_digits(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        # render_value=False: the form never sends a credential back to the browser.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Exactly 4 digits 0-9. Not shown again once saved.",
    )


class AccountForm(forms.ModelForm):
    new_card_last4 = four_digits("Card last 4")
    new_pin = four_digits("PIN")

    class Meta:
        model = Account
        fields = ["number", "balance", "caller_numbers"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adding = self.instance._state.adding
        for name in CREDENTIALS:
            if name in self.fields:
                self.fields[name].required = adding
                if not adding:
                    self.fields[name].help_text += " Leave both blank to keep the current ones."

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        given = [name for name in CREDENTIALS if cleaned.get(name)]
        for name in given:
            if not is_four_digits(cleaned[name]):
                # The message never repeats what was typed.
                self.add_error(name, "Enter exactly 4 digits 0-9.")
        if len(given) == 1:
            # Both digests change together, and the PIN's is salted by the account.
            missing = next(name for name in CREDENTIALS if name not in given)
            self.add_error(missing, "Enter both the card last 4 and the PIN, or neither.")
        return cleaned

    def save(self, commit: bool = True) -> Account:
        account = super().save(commit=False)
        card, pin = self.cleaned_data.get("new_card_last4"), self.cleaned_data.get("new_pin")
        if card and pin:
            account.set_credentials(card, pin)
        if commit:
            account.save()
        return account


@admin.register(Account)
class AccountAdmin(ViewsAudited, StrictListAdmin):
    form = AccountForm
    list_display = ["number", "balance", "card_sealed", "pin_sealed", "updated_at"]
    search_fields = ["number__exact"]  # its unique index serves exact, not iexact ("=number")
    search_help_text = "Exact account number."
    list_filter = ["created_at"]
    # A search finds one account: no second COUNT(*) of every account for "1 of N".
    show_full_result_count = False
    readonly_fields = ["card_sealed", "pin_sealed", "created_at", "updated_at"]

    def get_fields(self, request: HttpRequest, obj: Account | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("number", "balance", "caller_numbers", *CREDENTIALS)
        if not self.has_change_permission(request, obj):
            # Nothing to edit, so nothing to show in full.
            return ("number", "balance", "callers_masked", *self.readonly_fields)
        return ("number", "balance", "caller_numbers", *CREDENTIALS, *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Account | None = None) -> list[str]:
        if obj is None:
            return []
        # Sealed values are bound to the account number: changing it would orphan them.
        return ["number", *self.readonly_fields]

    card_sealed = sealed_column("card_last4", "card last 4")
    pin_sealed = sealed_column("pin", "PIN")

    @admin.display(description="caller numbers")
    def callers_masked(self, obj: Account) -> str:
        numbers = obj.caller_numbers if isinstance(obj.caller_numbers, list) else []
        # No numbers: the account answers a call from any number (Account.accepts_caller).
        return ", ".join(mask_phone(str(number)) for number in numbers) or "any"

    @method_decorator(sensitive_post_parameters(*CREDENTIALS))
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return super().changeform_view(request, object_id, form_url, extra_context)

    def viewed(self, obj: Account) -> dict[str, Any]:
        return {"account_number": obj.number}

    def save_model(self, request: HttpRequest, obj: Account, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        changed = sorted(set(form.changed_data) - set(CREDENTIALS))
        if form.cleaned_data.get("new_pin"):
            changed.append("credentials")
        _audit_change(request, obj, "changed" if change else "added", fields=changed)

    def delete_model(self, request: HttpRequest, obj: Account) -> None:
        super().delete_model(request, obj)
        _audit_change(request, obj, "deleted")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        # One transaction, as Django gives the delete page and the form: the "delete selected"
        # action has none, and accounts deleted without their rows would leave no trace at all
        # (their LogEntries add no staff_change: staff.auditing.SELF_AUDITED).
        with transaction.atomic():
            accounts = list(queryset)
            super().delete_queryset(request, queryset)
            for account in accounts:
                _audit_change(request, account, "deleted")


def _audit_change(request: HttpRequest, account: Account, action: str, **detail: Any) -> None:
    record_staff_action(
        request,
        AuditEvent.Event.RECORD_CHANGED,
        AuditEvent.Outcome.SUCCESS,
        account_number=account.number,
        model="accounts.Account",
        action=action,
        **detail,
    )


@admin.register(Lockout)
class LockoutAdmin(ViewsAudited, StrictListAdmin):
    # The detail page too shows the caller's number masked, never the raw key column.
    list_display = fields = readonly_fields = (
        "scope",
        "masked_key",
        "account",
        "locked_now",
        "failure_count",
        "locked_until_zoned",
        "updated_at_zoned",
    )
    list_filter = ["scope"]
    # Matched exactly, through Lockout.matching(): never a prefix, which would read a caller's
    # number back a digit at a time.
    search_fields = ["key__exact"]
    search_help_text = (
        "A caller number in any spelling with its country code (+1 555 123 4567, "
        "0044 20 7946 0958), or an account number."
    )
    actions = ["lift"]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list, and its ``record_viewed`` row as ViewsAudited writes it, but with a caller
        number searched for masked: the audit log (and its admin) never holds one in full."""
        response = StrictListAdmin.changelist_view(self, request, extra_context)
        filters = querystring_filters(request)
        search = filters.get(SEARCH_VAR)
        if isinstance(search, str) and (number := e164(search)) is not None:
            filters[SEARCH_VAR] = mask_phone(number)
        record_page_view(request, response, model=self.model._meta.label, filters=filters)
        return response

    def get_queryset(self, request: HttpRequest) -> QuerySet[Lockout]:
        # A card's counter names the first account behind the card, in the list's one query.
        first_account = Account.objects.filter(card_digest=OuterRef("key")).values("number")[:1]
        return super().get_queryset(request).annotate(card_account=Subquery(first_account))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Lockout], search_term: str
    ) -> tuple[QuerySet[Lockout], bool]:
        # The page's own checks on a search (its length) first; the match is Lockout.matching.
        super().get_search_results(request, queryset, search_term)
        if not search_term.strip():
            return queryset, False
        return queryset.filter(Lockout.matching(search_term)), False

    @admin.display(description="key")
    def masked_key(self, row: Lockout) -> str:
        return row.masked_key

    @admin.display(description="account")
    def account(self, row: Lockout) -> str:
        if row.scope == Lockout.Scope.OWNER:
            return row.key.partition("|")[0]
        return getattr(row, "card_account", None) or "—"

    @admin.display(description="locked now", boolean=True)
    def locked_now(self, row: Lockout) -> bool:
        return row.is_locked(timezone.now())

    @admin.display(description="failures counted")
    def failure_count(self, row: Lockout) -> int:
        return len(row.failures)

    @admin.display(description="locked until", ordering="locked_until")
    def locked_until_zoned(self, row: Lockout) -> str:
        return zoned(row.locked_until)

    @admin.display(description="updated", ordering="updated_at")
    def updated_at_zoned(self, row: Lockout) -> str:
        return zoned(row.updated_at)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Counters change only through calls and the audited lift below; deleting one would unlock
    # without a trace.
    def has_change_permission(self, request: HttpRequest, obj: Lockout | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Lockout | None = None) -> bool:
        return False

    def has_lift_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.lift_lockout")

    @admin.action(
        description="Lift the lock and forget the failures (audited)", permissions=["lift"]
    )
    def lift(self, request: HttpRequest, queryset: QuerySet[Lockout]) -> None:
        rows = list(queryset)
        for row in rows:
            row.lift(request.user.get_username(), channel=AuditEvent.Channel.ADMIN)
        self.message_user(request, f"Lifted {len(rows)} lock(s).", messages.SUCCESS)


def zoned(moment: datetime | None) -> str:
    """A time in the admin's zone, with the zone named: ops compare it with other tools'."""
    if moment is None:
        return "—"
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S %Z (UTC%z)}"
