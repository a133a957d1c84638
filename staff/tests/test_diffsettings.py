"""diffsettings prints what differs from Django's defaults, never a secret."""

import io

import pytest
from django.core.management import call_command
from django.test import override_settings

KEY = "k9:" + "7e" * 32
SECRETS = {
    "SECUREGATHER_KEYS": KEY,
    "TWILIO_AUTH_TOKEN": "twilio-auth-token-1f2e3d",
    "SECUREGATHER_API_TOKEN": "api-token-4c5b6a",
    "SECUREGATHER_LEGACY_KEY": "5d" * 32,
    "SECRET_KEY": "django-secret-key-" + "x" * 40,
}


@pytest.mark.parametrize("output", ["hash", "unified"])
# Only printed here, never connected to: Django's warning about overriding it does not apply.
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_no_secret_is_printed_and_the_rest_is(settings, output):
    database = {**settings.DATABASES["default"], "PASSWORD": "database-password-9a8b"}
    with override_settings(**SECRETS, DATABASES={"default": database}):
        out = io.StringIO()
        call_command("diffsettings", "--output", output, stdout=out)
    printed = out.getvalue()
    for secret in [*SECRETS.values(), "7e" * 32, "database-password-9a8b"]:
        assert secret not in printed
    assert "TWILIO_AUTH_TOKEN = '********************'" in printed
    assert "'PASSWORD': '********************'" in printed
    assert "SECUREGATHER_SESSION_LIFETIME = 600" in printed  # no secret: shown as it is


@pytest.mark.parametrize("output", ["hash", "unified"])
def test_the_settings_compared_against_print_no_secret_either(tmp_path, monkeypatch, output):
    (tmp_path / "other_host.py").write_text(f"SECRET_KEY = {'other-host-secret-' + 'y' * 40!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = io.StringIO()
    call_command("diffsettings", "--default", "other_host", "--output", output, stdout=out)
    assert "other-host-secret" not in out.getvalue()


def test_a_secret_left_as_djangos_default_is_not_shown_as_changed():
    out = io.StringIO()
    call_command("diffsettings", stdout=out)
    printed = out.getvalue()
    assert "EMAIL_HOST_PASSWORD" not in printed  # '' here as in Django's defaults
    assert "SECRET_KEY = '********************'" in printed  # set here, empty in Django's
