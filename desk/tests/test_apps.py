"""The desk app makes the staff admin's first page its own: the staff site, a lower layer, names
nothing of the desk."""

from __future__ import annotations

import pytest
from django.contrib import admin

from staff.admin_site import StaffAdminSite


def test_the_staff_site_names_no_index_template_of_its_own():
    assert StaffAdminSite.index_template is None


def test_the_desk_sets_the_admins_first_page_when_ready():
    assert admin.site.index_template == "desk/index.html"


@pytest.mark.django_db
def test_the_admins_first_page_is_the_desks(ops_client):
    page = ops_client.get("/admin/")
    assert page.status_code == 200
    assert "desk/index.html" in [t.name for t in page.templates]
