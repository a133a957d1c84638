from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Lockout
from securegather.models import AuditEvent


@admin.register(Lockout)
class LockoutAdmin(admin.ModelAdmin):
    list_display = ["scope", "masked_key", "failure_count", "locked_until", "updated_at"]
    list_filter = ["scope"]
    actions = ["lift"]

    @admin.display(description="key")
    def masked_key(self, row: Lockout) -> str:
        return row.masked_key

    @admin.display(description="failures in window")
    def failure_count(self, row: Lockout) -> int:
        return len(row.failures)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Counters change only through calls and the audited lift below; deleting one would unlock
    # without a trace.
    def has_change_permission(self, request: HttpRequest, obj: Lockout | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Lockout | None = None) -> bool:
        return False

    @admin.action(description="Lift the lock and forget the failures (audited)")
    def lift(self, request: HttpRequest, queryset: QuerySet[Lockout]) -> None:
        rows = list(queryset)
        for row in rows:
            row.lift(request.user.get_username(), channel=AuditEvent.Channel.ADMIN)
        self.message_user(request, f"Lifted {len(rows)} lock(s).", messages.SUCCESS)
