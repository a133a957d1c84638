"""A refusal inside the admin that says which permission the page needs and which roles have it,
in the admin's own frame with its way back, instead of a bare 403."""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.views import defaults

# The permission an admin page's URL name asks for, by its last part ("audit_auditevent_export").
ACTIONS = {
    "changelist": "view",
    "change": "view",
    "history": "view",
    "add": "add",
    "delete": "delete",
    "export": "export",
}
# What a page's permission lets one do, in the refusal's words.
DOING = {"view": "Viewing", "add": "Adding", "delete": "Deleting", "export": "Exporting"}


def needed_permission(request: HttpRequest) -> tuple[str, str, str] | None:
    """(app label, codename, what the page does) of the admin page ``request`` asks for, or None
    for a page that belongs to no model."""
    try:
        name = resolve(request.path_info).url_name or ""
    except Resolver404:
        return None
    for model in apps.get_models():
        opts = model._meta
        prefix = f"{opts.app_label}_{opts.model_name}_"
        action = ACTIONS.get(name.removeprefix(prefix)) if name.startswith(prefix) else None
        if action is not None:
            doing = f"{DOING[action]} {opts.verbose_name_plural}"
            return opts.app_label, f"{action}_{opts.model_name}", doing
    return None


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler403: in the admin, for a signed-in staff member, a page in the admin's frame that
    names the permission the page needs and the roles that have it; anywhere else, Django's."""
    user = getattr(request, "user", None)
    if not (
        request.path_info.startswith("/admin/")
        and user is not None
        and user.is_active
        and user.is_staff
    ):
        return defaults.permission_denied(request, exception)
    needed = needed_permission(request)
    context = {
        **admin.site.each_context(request),
        "title": "Not for your role",
        "needed": needed,
    }
    if needed is not None:
        app_label, codename, _ = needed
        context["permission"] = f"{app_label}.{codename}"
        context["granted"] = user.has_perm(context["permission"])
        context["roles"] = sorted(
            Group.objects.filter(
                permissions__content_type__app_label=app_label, permissions__codename=codename
            ).values_list("name", flat=True)
        )
    return render(request, "desk/403.html", context, status=403)
