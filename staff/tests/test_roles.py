import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection

from audit.models import AuditChainHead, AuditEvent
from conftest import TABLE, admin_urls, object_urls
from staff import roles
from staff.roles import OPS_GROUP, ensure_ops_group

pytestmark = pytest.mark.django_db


def perms(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


def test_migrate_leaves_an_ops_group_that_views_and_exports_only():
    assert perms(Group.objects.get(name=OPS_GROUP)) == {
        "calls.view_callsession",
        "accounts.view_account",
        "accounts.view_lockout",
        "audit.view_auditevent",
        "audit.export_auditevent",
    }


def test_ensuring_resets_permissions_someone_added():
    group = ensure_ops_group()
    group.permissions.add(Permission.objects.get(codename="change_account"))
    call_command("migrate", verbosity=0)
    assert "accounts.change_account" not in perms(Group.objects.get(name=OPS_GROUP))


def snapshot() -> dict[str, list[tuple]]:
    """Every table's rows but the audit log's and its chain head's (each view adds a row) and
    the session's (each request moves its expiry)."""
    skip = {TABLE, AuditChainHead._meta.db_table, "django_session"}
    tables = {}
    with connection.cursor() as cursor:
        for table in set(connection.introspection.table_names()) - skip:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            tables[table] = sorted(cursor.fetchall(), key=repr)
    return tables


def test_ops_can_view_every_page_and_change_nothing(ops_client, calls_made):
    rows_before = AuditEvent.objects.count()
    before = snapshot()
    pages = list(admin_urls())
    viewable = [url for url in pages if ops_client.get(url).status_code == 200]
    assert any("/calls/callsession/" in url and url.endswith("/change/") for url in viewable)
    assert any("/accounts/account/" in url and url.endswith("/change/") for url in viewable)
    assert any("/audit/auditevent/" in url and url.endswith("/change/") for url in viewable)
    assert not any(url.endswith("/add/") or url.endswith("/delete/") for url in viewable)
    for url in pages:
        if url.endswith(("/add/", "/change/", "/delete/")):
            response = ops_client.post(url, {"post": "yes", "balance": "0", "state": "finished"})
            assert response.status_code in {302, 403}, url
            if response.status_code == 302:  # off to sign in or back to a list: nothing saved
                assert "/change/" not in response["Location"], url
    assert snapshot() == before
    assert AuditEvent.objects.count() > rows_before


def test_ops_change_pages_have_no_save_button(ops_client, calls_made):
    for url in object_urls("change"):
        response = ops_client.get(url)
        if response.status_code == 200:
            assert 'name="_save"' not in response.content.decode(), url


def test_what_a_role_does_not_allow_is_refused_and_audited(ops_client, ops_user, demo_account):
    account = f"/admin/accounts/account/{demo_account.pk}/change/"
    refused = [
        ("get", "/admin/auth/user/"),
        ("post", account),
        ("get", "/admin/audit/auditevent/1/delete/"),
    ]
    for method, url in refused:
        response = getattr(ops_client, method)(f"{url}?balance=999", {"balance": "999"})
        assert response.status_code == 403, url
    rows = AuditEvent.objects.filter(event="unauthorized").order_by("id")
    assert [(row.actor, row.channel, row.detail) for row in rows] == [
        (ops_user.username, "admin", {"path": url, "method": method.upper()})
        for method, url in refused
    ]
    assert rows[0].origin_ip == "127.0.0.1"


@pytest.mark.parametrize(
    "url", ["/admin/audit/auditevent/%00/delete/", "/admin/auth/user/1%00/change/"]
)
def test_a_refusal_whose_path_holds_a_nul_is_audited(ops_client, ops_user, url):
    # PostgreSQL stores no NUL in text or jsonb: the row would be lost, and the 403 a 500.
    assert ops_client.get(url, HTTP_USER_AGENT="probe\x00").status_code == 403
    row = AuditEvent.objects.get(event="unauthorized")
    assert row.detail == {"path": url.replace("%00", "\ufffd"), "method": "GET"}
    assert row.user_agent == "probe\ufffd"


def test_a_migrate_that_left_auth_unmade_makes_no_group(monkeypatch):
    # `migrate staff` on a new database: auth's tables come with the next whole migrate.
    made = []
    monkeypatch.setattr(roles, "ensure_ops_group", made.append)

    class WithoutAuth:
        def get_model(self, app_label, model_name):
            raise LookupError(app_label)

    sender = django_apps.get_app_config("staff")
    roles._ops_group_after_migrate(sender, using="default", apps=WithoutAuth())
    assert made == []
    roles._ops_group_after_migrate(sender, using="default", apps=django_apps)
    assert made == ["default"]
