"""Settings, read from the environment or a `.env` file beside manage.py (django-environ)."""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A real environment variable wins over the same name in .env. DJANGO_ENV_FILE names another
# file (e.g. /etc/securegather/env), or /dev/null to read none.
_env_file = os.environ.get("DJANGO_ENV_FILE", "")
if _env_file and (os.path.isdir(_env_file) or not os.access(_env_file, os.R_OK)):
    # Named but unreadable: say so, not that the first setting it held is missing.
    raise ImproperlyConfigured(f"DJANGO_ENV_FILE names {_env_file}, which is no readable file.")
environ.Env.read_env(_env_file or BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# No default: a missing secret key is a start-up error, never a shared constant.
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "staff",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "keys",
    "audit",
    "accounts",
    "calls",
    "legacy",
]

MIDDLEWARE = [
    "calls.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "staff.middleware.StaffSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "staff.middleware.StaffAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "calls.middleware.CallLanguageMiddleware",
]

ROOT_URLCONF = "securegather.urls"
WSGI_APPLICATION = "securegather.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Opening a PostgreSQL connection costs more than a whole call step: keep it across requests.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=600)
# Checked before each request's first query (SELECT 1), so that a restarted server costs no caller
# a step.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers share one SQLite file: each transaction takes the write lock at
    # BEGIN (IMMEDIATE), so two steps never both read and then fail to upgrade, and a writer waits
    # up to 20 s for it instead of failing. WAL lets readers go on during a write;
    # synchronous=NORMAL is durable across a process crash and costs one fsync per checkpoint
    # instead of one per commit.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            # secure_delete: SQLite overwrites deleted content with zeros, so a wiped sealed
            # value does not linger in the file's free pages. The file itself is made 0600 when
            # a connection opens (audit/database_checks.py).
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;"
            ),
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side binding (psycopg 3): a statement goes to the server with placeholders and its
    # values apart, so PostgreSQL's log (log_statement, log_min_error_statement) prints "$1", not
    # a caller's number. It takes one statement per execute. The DETAIL of an error still quotes
    # values: docs/deployment.md, "PostgreSQL's server log", and the check audit.W002.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # No rule: it records each password change made outside the admin (createsuperuser,
    # changepassword, the shell) in the audit log, from Django's password_changed() hook.
    {"NAME": "staff.users.PasswordChangeRecorded"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- SecureGather -------------------------------------------------------------------------
# Keyring: "kid:64-hex-chars" entries, comma separated, the first is primary; or a file of them.
SECUREGATHER_KEYS = env.str("SECUREGATHER_KEYS", default="")
SECUREGATHER_KEYS_FILE = env.str("SECUREGATHER_KEYS_FILE", default="")
# Cryptoperiod of the primary key: a warning past either. Random 96-bit nonces allow at most
# 2**32 seals per key (NIST SP 800-38D 8.3); 2**30 leaves a margin for uncounted seals.
SECUREGATHER_KEY_MAX_SEALS = env.int("SECUREGATHER_KEY_MAX_SEALS", default=2**30)
SECUREGATHER_KEY_MAX_AGE_DAYS = env.int("SECUREGATHER_KEY_MAX_AGE_DAYS", default=365)
# Signed audit checkpoints (audit/checkpoints.py), kept off the database: the Ed25519 private
# key's PEM file, and the sinks, a JSON-lines file and syslog (`/dev/log`, `udp://host:514`).
# Empty key file: no checkpoints. One is due every 1,000 rows or 5 minutes of appends.
SECUREGATHER_CHECKPOINT_KEY_FILE = env.str("SECUREGATHER_CHECKPOINT_KEY_FILE", default="")
SECUREGATHER_CHECKPOINT_FILE = env.str("SECUREGATHER_CHECKPOINT_FILE", default="")
SECUREGATHER_CHECKPOINT_SYSLOG = env.str("SECUREGATHER_CHECKPOINT_SYSLOG", default="")
SECUREGATHER_CHECKPOINT_ROWS = env.int("SECUREGATHER_CHECKPOINT_ROWS", default=1000)
SECUREGATHER_CHECKPOINT_SECONDS = env.int("SECUREGATHER_CHECKPOINT_SECONDS", default=300)
# The origin Twilio signs when a proxy sits in front, e.g. "https://voice.example.com".
SECUREGATHER_PUBLIC_URL = env.str("SECUREGATHER_PUBLIC_URL", default="")
SECUREGATHER_RESOLVER = env.str(
    "SECUREGATHER_RESOLVER", default="accounts.resolvers.DatabaseResolver"
)
# The HTTP resolver (accounts.resolvers.HttpResolver, docs/backend.md): the user's backend's
# URL; its public keys, "kid:SUITE:base64" entries comma separated, of which the first of the
# suite SECUREGATHER_BACKEND_KEM names seals; the secret that signs each request; the request's
# timeout in seconds (Twilio waits 15 s for the whole step); an optional client certificate and
# key (PEM files) for mutual TLS, and a CA file to trust instead of the system's. After 5
# failures in a row a process answers "unavailable" at once for 30 s instead of waiting on
# every call.
SECUREGATHER_BACKEND_URL = env.str("SECUREGATHER_BACKEND_URL", default="")
SECUREGATHER_BACKEND_PUBLIC_KEYS = env.str("SECUREGATHER_BACKEND_PUBLIC_KEYS", default="")
# X25519, or MLKEM768_X25519: X-Wing, a hybrid that also holds against a quantum computer.
SECUREGATHER_BACKEND_KEM = env.str("SECUREGATHER_BACKEND_KEM", default="X25519")
SECUREGATHER_BACKEND_SECRET = env.str("SECUREGATHER_BACKEND_SECRET", default="")
SECUREGATHER_BACKEND_TIMEOUT = env.float("SECUREGATHER_BACKEND_TIMEOUT", default=3.0)
SECUREGATHER_BACKEND_CLIENT_CERT = env.str("SECUREGATHER_BACKEND_CLIENT_CERT", default="")
SECUREGATHER_BACKEND_CLIENT_KEY = env.str("SECUREGATHER_BACKEND_CLIENT_KEY", default="")
SECUREGATHER_BACKEND_CA_FILE = env.str("SECUREGATHER_BACKEND_CA_FILE", default="")
SECUREGATHER_BACKEND_BREAKER_FAILURES = env.int("SECUREGATHER_BACKEND_BREAKER_FAILURES", default=5)
SECUREGATHER_BACKEND_BREAKER_SECONDS = env.int("SECUREGATHER_BACKEND_BREAKER_SECONDS", default=30)
# The language callers hear: words (locale/<lang>/LC_MESSAGES/django.po, compiled by `make`)
# and the <Say language>: en-US, es-MX or es-ES.
SECUREGATHER_LANGUAGE = env.str("SECUREGATHER_LANGUAGE", default="en-US")
# The <Say voice> per language, e.g. "es-MX=Polly.Andres,en-US=Polly.Joanna", over the defaults
# (calls.languages.DEFAULT_VOICES); "es-ES=" leaves that language to the account's voice.
SECUREGATHER_VOICES = env.str("SECUREGATHER_VOICES", default="")
# true: open each call with "For English press 1, para español oprima 2".
SECUREGATHER_OFFER_LANGUAGES = env.bool("SECUREGATHER_OFFER_LANGUAGES", default=False)
LOCALE_PATHS = [BASE_DIR / "locale"]
# Tries per prompt before the caller hears a goodbye.
SECUREGATHER_MAX_TRIES = env.int("SECUREGATHER_MAX_TRIES", default=3)
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
# Optional: when set, requests made for any other Twilio account are refused.
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")

# Tutorial-compatible API (POST /api/decrypt-gather): the tutorial's AES_SECRET, 64 hex
# characters; unset, the API answers 404. With a token set, callers send "Authorization: Bearer".
SECUREGATHER_LEGACY_KEY = env.str("SECUREGATHER_LEGACY_KEY", default="")
SECUREGATHER_API_TOKEN = env.str("SECUREGATHER_API_TOKEN", default="")

# --- Production security (`manage.py check --deploy` is clean with these defaults) --------------
# Safe by default; the .env that `make run` writes turns them off, so local http keeps working.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Only the registrable domain's owner can enter the preload list; on voice.example.com it is inert.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
# Behind a TLS-terminating proxy: the header it sets to "https", e.g. X-Forwarded-Proto. Only set
# it when the proxy overwrites that header on every request: a client could send it otherwise.
_proxy_ssl_header = env.str("DJANGO_SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# The client's address behind proxies (audit/origins.py): the header they append each peer to and
# how many of them stand in front, e.g. X-Forwarded-For and 1 behind one nginx. Unset, the
# address is the connection's peer and that header is never read: a client could write it.
SECUREGATHER_TRUSTED_PROXY_HEADER = env.str("SECUREGATHER_TRUSTED_PROXY_HEADER", default="")
SECUREGATHER_TRUSTED_PROXY_COUNT = env.int("SECUREGATHER_TRUSTED_PROXY_COUNT", default=0)

# Lockout, PCI DSS v4.0 8.3.4 (at most 10 invalid attempts, locked at least 30 minutes): this many
# failed verifications of a caller or an account within the window (seconds) lock it for the
# duration (seconds).
SECUREGATHER_LOCKOUT_FAILURES = env.int("SECUREGATHER_LOCKOUT_FAILURES", default=5)
SECUREGATHER_LOCKOUT_WINDOW = env.int("SECUREGATHER_LOCKOUT_WINDOW", default=24 * 60 * 60)
SECUREGATHER_LOCKOUT_DURATION = env.int("SECUREGATHER_LOCKOUT_DURATION", default=30 * 60)
# A card's counter (every caller, every channel) also bounds a month: this many failures within
# the ceiling's window (seconds) lock it until the oldest of them leaves the window, so no 30
# days hold more than 10 PIN checks of an account (accounts/lockout.py, docs/security.md).
SECUREGATHER_LOCKOUT_CEILING = env.int("SECUREGATHER_LOCKOUT_CEILING", default=10)
SECUREGATHER_LOCKOUT_CEILING_WINDOW = env.int(
    "SECUREGATHER_LOCKOUT_CEILING_WINDOW", default=30 * 24 * 60 * 60
)
# The guessing watch: this many failed verifications across all accounts within one window
# (seconds) write a guessing_suspected audit row, once per window, and show on /healthz.
SECUREGATHER_GUESSING_FAILURES = env.int("SECUREGATHER_GUESSING_FAILURES", default=100)
SECUREGATHER_GUESSING_WINDOW = env.int("SECUREGATHER_GUESSING_WINDOW", default=60 * 60)
# A call's steps are refused this long (seconds) after it started; `purge_sessions` deletes
# sessions older than the retention (seconds).
SECUREGATHER_SESSION_LIFETIME = env.int("SECUREGATHER_SESSION_LIFETIME", default=10 * 60)
SECUREGATHER_SESSION_RETENTION = env.int("SECUREGATHER_SESSION_RETENTION", default=24 * 60 * 60)
# manage.py migrate records each run that changes the schema, its start and its end, from the
# pre_migrate and post_migrate signals (audit/migration_runs.py).
SECUREGATHER_AUDIT_MIGRATE = True
# true: the database role in DATABASE_URL may own the tables (audit.E002 and audit.E003 off). Only
# for a development database with one role, and for the owner's `migrate` step: the service runs
# as a role that owns nothing, or it could disable the audit table's append-only triggers.
SECUREGATHER_DATABASE_ONE_ROLE = env.bool("SECUREGATHER_DATABASE_ONE_ROLE", default=False)
# Error reports (DEBUG page, error mails) never show request data or local variables, DEBUG or not.
DEFAULT_EXCEPTION_REPORTER = "keys.redaction.WebhookExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "keys.redaction.WebhookReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_digits": {"()": "keys.redaction.RedactDigitsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_digits"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    # Django's default config gives its own loggers a console handler (under DEBUG) and mail to
    # ADMINS, neither with the redacting filter: without handlers of their own, their records
    # reach the root's, which has it.
    "loggers": {"django": {"handlers": [], "propagate": True}},
}

# --- Staff admin: a second factor, lockout, idle sign-out (PCI DSS v4.0 8.3, 8.4, 8.2.8) ----
# The admin site is django-otp's: a password alone does not reach it (a TOTP device is needed;
# `manage.py enrol_totp USERNAME` makes one).
INSTALLED_APPS[INSTALLED_APPS.index("django.contrib.admin")] = "staff.apps.StaffAdminConfig"
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "axes"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # axes wants to be last
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
OTP_TOTP_ISSUER = "SecureGather"
# No admin page shows a TOTP device's secret, not even to superusers (no key field, no QR code):
# `enrol_totp` prints it once, for the user's authenticator app.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# 10 wrong passwords lock for 30 minutes (PCI DSS 8.3.4: at most 10 tries, at least 30 minutes).
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=30)
# Each username, and each address (password spraying across usernames), on its own count.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# The address is the one audit rows name (audit.origins.client_address), behind a declared proxy
# the client's, not the proxy's: otherwise one address's 10 failures would lock out every staff
# member. Requests named by no address (they bypassed the declared proxy) share one count, under
# 0.0.0.0 (audit.origins.lockout_address).
AXES_CLIENT_IP_CALLABLE = "audit.origins.lockout_address"
AXES_RESET_ON_SUCCESS = True
# A password typed into the username box stays out of axes' tables and log lines: failures are
# stored and counted under an existing user's name or a keyed digest of what was typed, and the
# submitted username is masked in the POST data it keeps and in its log lines (axes always masks
# the password). Addresses stay readable: they are what an investigation starts from.
AXES_USERNAME_CALLABLE = "staff.auditing.axes_username"
AXES_SENSITIVE_PARAMETERS = ["username", "otp_token"]
AXES_VERBOSE = False  # no banner on every manage.py command
# 15 idle minutes end a staff session (8.2.8): each request pushes the expiry forward.
SESSION_COOKIE_AGE = 15 * 60
# Django's database sessions, whose clear_expired() (clearsessions, purge_sessions) records each
# staff sign-out by idle timeout it finds.
SESSION_ENGINE = "staff.sessions"
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Ops desk ------------------------------------------------------------------------------
# The admin's first page and its refusals (desk/): last, since it reads every app above it.
INSTALLED_APPS += ["desk"]

# --- Monitoring (monitoring/): GET /metrics in Prometheus' text format ----------------------
# Answered only to the addresses or networks listed (e.g. "127.0.0.1,10.0.0.0/8"; the client's
# address as audit.origins.client_address reads it) or to a request with "Authorization: Bearer
# <token>"; 403 to others, and 404 to all while neither is set.
SECUREGATHER_METRICS_ADDRESSES = env.list("SECUREGATHER_METRICS_ADDRESSES", default=[])
SECUREGATHER_METRICS_TOKEN = env.str("SECUREGATHER_METRICS_TOKEN", default="")
INSTALLED_APPS += ["monitoring"]
# First, so that a step's time includes every other middleware's.
MIDDLEWARE.insert(0, "monitoring.middleware.StepTimingMiddleware")
