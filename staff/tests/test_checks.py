from staff.checks import check_password_recorder, check_session_engine


def test_the_configured_settings_pass():
    assert check_session_engine() == [] and check_password_recorder() == []


def test_e001_another_session_engine(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    assert [error.id for error in check_session_engine()] == ["staff.E001"]


def test_e002_no_password_recorder(settings):
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}
    ]
    assert [error.id for error in check_password_recorder()] == ["staff.E002"]
