import threading
import urllib.error
from unittest import mock
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test import override_settings

from calls.management.commands.simulate_call import Command as SimulateCall
from calls.models import CallSession


def simulate(capsys, *args):
    call_command("simulate_call", *args)
    return capsys.readouterr().out


@pytest.mark.django_db
def test_in_process_call_hears_the_account(demo_account, capsys):
    out = simulate(capsys, "--card", "1234", "--pin", "4321")
    assert "Caller hears: Please enter last 4 digits of your payment card number." in out
    assert "Your account number is AC12345678 and your balance is 12.55" in out
    assert "Caller presses: ****" in out and "(call ended)" in out
    assert "1234" not in out.replace("AC12345678", "")
    assert CallSession.objects.get().ended_at is not None


@pytest.mark.django_db
def test_in_process_wrong_pin_hears_not_found(demo_account, capsys):
    out = simulate(capsys, "--card", "1234", "--pin", "0000")
    assert "We were not able to locate you in our system. Goodbye." in out
    assert "AC12345678" not in out


@pytest.mark.django_db
def test_a_refused_card_stops_the_call_before_the_pin_reaches_the_card_prompt(demo_account, capsys):
    with pytest.raises(CommandError) as refused:
        call_command("simulate_call", "--card", "12", "--pin", "2468")
    out = capsys.readouterr().out
    assert str(refused.value).startswith(
        "The server refused the entry at /voice/card/ and asked for it again"
    )
    assert out.count("Sorry, that was not 4 digits.") == 1
    # One press only: the PIN was never pressed anywhere.
    assert out.count("Caller presses:") == 1 and "(call ended)" in out
    assert "2468" not in out + str(refused.value)
    assert CallSession.objects.get().ended_at is not None


@pytest.mark.django_db
def test_a_refused_pin_stops_the_call(demo_account, capsys):
    with pytest.raises(CommandError, match="refused the entry at /voice/pin/"):
        call_command("simulate_call", "--card", "1234", "--pin", "43")
    assert capsys.readouterr().out.count("Caller presses:") == 2


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

    def handle(self):
        super().handle()
        # The server thread's connection would outlive the test and block dropping the test
        # database on PostgreSQL (CONN_MAX_AGE keeps it open).
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_over_http_against_a_running_server(demo_account, capsys):
    server = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        out = simulate(capsys, "--card", "1234", "--pin", "4321", "--url", url)
    finally:
        server.shutdown()
    assert "Your account number is AC12345678" in out


def test_an_unreachable_remote_server_gets_no_hint_about_make_run():
    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    with (
        mock.patch("urllib.request.urlopen", autospec=True, side_effect=refused),
        pytest.raises(CommandError) as failed,
    ):
        call_command("simulate_call", "--card", "0", "--pin", "0", "--url", "http://10.0.0.9")
    assert "Cannot reach http://10.0.0.9/voice/" in str(failed.value)
    assert "make run" not in str(failed.value)


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(CommandError, match="Is `make run` running"):
        call_command(
            "simulate_call", "--card", "1234", "--pin", "4321", "--url", "http://127.0.0.1:9"
        )


def from_command_line(capsys, *args: str) -> str:
    """Run as manage.py does (call_command skips the system checks): its stderr and exit."""
    with pytest.raises(SystemExit) as exited:
        SimulateCall().run_from_argv(["manage.py", "simulate_call", *args])
    assert exited.value.code == 1
    return capsys.readouterr().err


@override_settings(SECUREGATHER_KEYS="")
def test_against_a_server_this_hosts_keyring_is_not_needed(capsys):
    # No keyring here, as on a workstation: the server is what answers (here, nothing does).
    err = from_command_line(capsys, "--card", "0", "--pin", "0", "--url", "http://127.0.0.1:9")
    assert "Cannot reach http://127.0.0.1:9/voice/" in err and "E001" not in err


def test_it_takes_skip_checks_as_every_command_does():
    parser = SimulateCall().create_parser("manage.py", "simulate_call")
    assert parser.parse_args(["--skip-checks"]).skip_checks is True


@pytest.mark.django_db
@override_settings(SECUREGATHER_KEYS="")
def test_in_process_this_hosts_settings_are_checked_first(capsys):
    err = from_command_line(capsys, "--card", "0", "--pin", "0")
    assert "(securegather.E001)" in err


@pytest.mark.django_db
def test_in_process_call_works_under_production_settings(demo_account, capsys, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECUREGATHER_PUBLIC_URL = "https://voice.example.com"
    settings.ALLOWED_HOSTS = ["voice.example.com"]
    out = simulate(capsys, "--card", "1234", "--pin", "4321")
    assert "Your account number is AC12345678" in out


@pytest.mark.django_db
def test_digits_left_off_the_command_line_are_asked_without_echo(demo_account, capsys):
    with mock.patch("getpass.getpass", autospec=True, side_effect=["1234", "4321"]) as ask:
        out = simulate(capsys)
    assert ask.call_count == 2
    assert "Your account number is AC12345678" in out


@pytest.mark.django_db
def test_an_answer_that_is_not_twiml_is_a_clear_error(settings):
    def not_twiml(url, params):
        return 200, "<html>a login page"

    with (
        mock.patch(
            "calls.management.commands.simulate_call.in_process_transport",
            autospec=True,
            return_value=not_twiml,
        ),
        pytest.raises(CommandError, match="The answer is not TwiML"),
    ):
        call_command("simulate_call", "--card", "1234", "--pin", "4321")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "apology"),
    [("en-US", "Sorry, we cannot take your details right now."), ("es-MX", "Lo sentimos")],
)
def test_a_call_that_hears_the_apology_fails_the_command(demo_account, capsys, language, apology):
    # In whichever language the server speaks.
    failing = mock.patch(
        "calls.models.CallSession.accept_card", autospec=True, side_effect=RuntimeError
    )
    with (
        override_settings(SECUREGATHER_LANGUAGE=language),
        failing,
        pytest.raises(CommandError, match="The server apologised: a step failed"),
    ):
        call_command("simulate_call", "--card", "1234", "--pin", "4321")
    assert apology in capsys.readouterr().out


@pytest.mark.parametrize("url", ["ftp://example.com", "http://[::1"])
def test_a_url_it_cannot_post_to_is_a_clear_error(url):
    with pytest.raises(CommandError, match="--url takes an http:// or https:// address"):
        call_command("simulate_call", "--card", "1234", "--pin", "4321", "--url", url)
