"""A page a staff member's role lacks answers 403 inside the admin's frame, naming the
permission it needs, the roles that have it, and the way back; elsewhere, Django's 403."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

from conftest import make_staff, verified_client
from desk.views import permission_denied

pytestmark = pytest.mark.django_db


def test_a_page_only_superusers_may_open_says_so(ops_client):
    response = ops_client.get("/admin/auth/user/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Viewing users needs the permission <code>auth.view_user</code>" in page
    assert "which only superusers have" in page
    assert 'id="user-tools"' in page and '<a href="/admin/">Back to the dashboard</a>' in page


def test_the_roles_that_have_the_permission_are_named(db):
    bare = make_staff("bea")  # staff, in no role
    supervisors = Group.objects.create(name="supervisors")
    supervisors.permissions.add(Permission.objects.get(codename="view_lockout"))
    page = verified_client(bare).get("/admin/accounts/lockout/")
    assert page.status_code == 403
    text = page.content.decode()
    assert "<code>accounts.view_lockout</code>" in text
    assert "<strong>ops</strong>, <strong>supervisors</strong> have" in text


def test_the_export_names_its_own_permission(db):
    viewer = make_staff("vic")
    viewer.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    page = verified_client(viewer).get("/admin/audit/auditevent/export.csv")
    assert page.status_code == 403
    assert "<code>audit.export_auditevent</code>" in page.content.decode()


def test_a_page_no_role_may_open_says_the_records_are_read_only(admin_client):
    page = admin_client.get("/admin/audit/auditevent/add/")
    assert page.status_code == 403
    assert "No role may do this here" in page.content.decode()


def test_outside_the_admin_the_refusal_is_djangos(rf, superuser):
    request = rf.get("/api/decrypt-gather")
    request.user = superuser
    response = permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert "<h1>403 Forbidden</h1>" in response.content.decode()
    assert "Back to the dashboard" not in response.content.decode()
