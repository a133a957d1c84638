"""Settings for the test suite: fixed keys and token so tests sign and seal deterministically."""

import os

# Tests never depend on a developer's .env: these win over it.
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")

from securegather.settings import *  # noqa: F403

SECUREGATHER_KEYS = "test2:" + "22" * 32 + ",test1:" + "11" * 32
SECUREGATHER_KEYS_FILE = ""
SECUREGATHER_PUBLIC_URL = ""
TWILIO_AUTH_TOKEN = "test-auth-token-0000000000000000"  # noqa: S105
TWILIO_ACCOUNT_SID = ""
# The test client speaks http; TLS settings have their own test (test_deploy_check.py).
SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# pytest-django builds each test database with migrate: its rows would sit under every test's
# rows. audit/tests/test_migrate.py runs migrate under the production settings.
SECUREGATHER_AUDIT_MIGRATE = False
# The suite runs as one role (PostgreSQL's superuser, or SQLite): audit/tests/test_runtime_role.py
# turns the role check back on where it tests it.
SECUREGATHER_DATABASE_ONE_ROLE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
