"""The ops desk's dashboard, as a tag the admin's first page (desk/index.html) draws."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from desk.dashboard import dashboard as dashboard_for

register = template.Library()


@register.inclusion_tag("desk/dashboard.html", takes_context=True)
def dashboard(context: dict[str, Any]) -> dict[str, Any]:
    return {"board": dashboard_for(context["request"].user, timezone.now())}
