"""Every page the admin serves for the rows in the database: for tests that sweep them all."""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib import admin
from django.urls import reverse

# Change pages per model: enough to cover every kind of row the flows write.
ROWS_PER_MODEL = 25


def admin_urls() -> Iterator[str]:
    yield reverse("admin:index")
    app_labels = sorted({model._meta.app_label for model in admin.site._registry})
    for app_label in app_labels:
        yield reverse("admin:app_list", args=[app_label])
    for model in admin.site._registry:
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        yield reverse(f"{name}_changelist")
        yield reverse(f"{name}_add")
        for pk in model._default_manager.values_list("pk", flat=True)[:ROWS_PER_MODEL]:
            for view in ("change", "history", "delete"):
                yield reverse(f"{name}_{view}", args=[pk])


def object_urls(view: str) -> Iterator[str]:
    for model in admin.site._registry:
        opts = model._meta
        for pk in model._default_manager.values_list("pk", flat=True)[:ROWS_PER_MODEL]:
            yield reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[pk])
