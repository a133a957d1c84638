"""The user admin says whether each user has an authenticator, which sign-in needs."""

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


def test_the_user_list_and_page_show_whether_mfa_is_enrolled(admin_client, superuser):
    without = User.objects.create_user("nia", password="another long password", is_staff=True)
    listing = admin_client.get("/admin/auth/user/")
    assert "MFA enrolled" in listing.content.decode()
    flags = {
        row.username: admin_client.get(f"/admin/auth/user/{row.pk}/change/").content.decode()
        for row in (superuser, without)
    }
    assert "field-mfa_enrolled" in flags["root"]
    assert 'alt="True"' in flags["root"].split("field-mfa_enrolled")[1][:400]
    assert 'alt="False"' in flags["nia"].split("field-mfa_enrolled")[1][:400]
