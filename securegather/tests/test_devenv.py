"""The development .env: fresh secrets, and production's TLS defaults off for local http."""

from __future__ import annotations

from keys.keyring import parse_entries
from securegather import devenv


def written(capsys) -> dict[str, str]:
    devenv.main()
    lines = capsys.readouterr().out.splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_it_writes_fresh_secrets_each_time(capsys):
    first, second = written(capsys), written(capsys)
    assert first["DJANGO_SECRET_KEY"] != second["DJANGO_SECRET_KEY"]
    assert len(parse_entries(first["SECUREGATHER_KEYS"])) == 1
    assert len(first["TWILIO_AUTH_TOKEN"]) == 32


def test_local_http_keeps_working(capsys):
    env = written(capsys)
    assert env["DJANGO_SECURE_SSL_REDIRECT"] == "false"
    assert env["DJANGO_SECURE_HSTS_SECONDS"] == "0"
    assert env["DJANGO_SECURE_COOKIES"] == "false"


def test_a_development_database_has_one_role(capsys):
    assert written(capsys)["SECUREGATHER_DATABASE_ONE_ROLE"] == "true"
