"""A step that fails leaks no digit: not in the answer, a log record, or Django's error report.

Django's technical 500 page and error mails print POST data and every frame's local variables
when DEBUG is on (sensitive_post_parameters only counts with DEBUG off), and a caller's digits
sit in the locals of several frames of each step. WebhookReporterFilter hides both, always.
"""

import logging
from unittest import mock

import pytest
from django.test import Client, override_settings
from django.views.debug import (
    ExceptionReporter,
    SafeExceptionReporterFilter,
    get_exception_reporter_class,
)

from conftest import hangs_up, spoken, standalone

pytestmark = pytest.mark.django_db
CARD, PIN = "8264", "5937"
# Where each step is made to fail: deep enough that the digits are in the frames' locals.
FAULTS = {
    "": "accounts.lockout.caller_lock",
    "language/": "calls.languages.for_keypress",
    "card/": "calls.models.CallSession.accept_card",
    "pin/": "accounts.lockout.Counters.hold",
    "status/": "calls.models.CallSession.end",
    "fallback/": "calls.views.has_valid_signature",
}


def fail_step(call, step, digits):
    """Post a step whose insides raise; the exception, with its traceback, and the response."""
    boom = RuntimeError("step failed")
    params = {**call.base(), "Digits": digits}
    if step == "status/":
        params["CallStatus"] = "completed"  # the call's end: what ends it (and fails here)
    with mock.patch(FAULTS[step], autospec=True, side_effect=boom):
        response = call.twilio.post(f"/voice/{step}", params)
    return boom, response


def report(response, exc, **kwargs):
    reporter = ExceptionReporter(response.wsgi_request, type(exc), exc, exc.__traceback__)
    return reporter.get_traceback_text() + reporter.get_traceback_html()


def get_to(call, step):
    if step != "":
        call.start()
    if step in ("pin/", "status/"):
        call.card(CARD)


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("step", list(FAULTS))
def test_a_failing_step_leaks_no_digit(call, demo_account, plaintext, step, debug):
    plaintext.caplog.set_level(logging.DEBUG)
    get_to(call, step)
    with override_settings(DEBUG=debug):
        exc, response = fail_step(call, step, PIN)
        text = report(response, exc)
    assert response.status_code == 200
    if step != "status/":
        assert "Sorry" in spoken(response) and hangs_up(response)
    assert "RuntimeError" in plaintext.caplog.text
    assert "RuntimeError" in text and "********" in text  # a report, with values hidden
    # Standalone: the HTML report's element ids are long numbers that may hold any 4 digits.
    assert not standalone(PIN).search(text) and not standalone(CARD).search(text)
    plaintext.assert_absent(CARD, PIN)


@override_settings(DEBUG=True)
def test_without_the_filter_the_debug_report_would_show_the_digits(call, plaintext):
    """The test above can fail: Django's own filter, with DEBUG on, prints them."""
    call.start()
    exc, response = fail_step(call, "card/", CARD)
    response.wsgi_request.exception_reporter_filter = SafeExceptionReporterFilter()
    assert standalone(CARD).search(report(response, exc))


def test_the_pin_step_holds_both_values_in_its_frames(call, demo_account):
    """Where the PIN step fails, its frames do hold the plaintext card and PIN."""
    get_to(call, "pin/")
    exc, _ = fail_step(call, "pin/", PIN)
    tb, frames = exc.__traceback__, []
    while tb is not None:
        frames.append(tb.tb_frame.f_locals)
        tb = tb.tb_next
    values = {value for local in frames for value in local.values() if isinstance(value, str)}
    assert {CARD, PIN} <= values


@pytest.mark.parametrize("debug", [False, True])
def test_digits_in_the_query_string_stay_out_of_the_report_too(rf, debug):
    # Twilio posts Digits in the body, but a client may put them in the URL: the report's
    # query items, its Request URL and META's QUERY_STRING would each print them.
    request = rf.post(f"/voice/card/?Digits={CARD}", {"Digits": PIN})
    request.META["RAW_URI"] = f"/voice/card/?Digits={CARD}"  # as gunicorn sets it
    exc = RuntimeError("step failed")
    with override_settings(DEBUG=debug):
        reporter = get_exception_reporter_class(request)(request, type(exc), exc, None)
        text = reporter.get_traceback_text() + reporter.get_traceback_html()
    assert "Digits" in text and "/voice/card/" in text  # a report, with values hidden
    assert not standalone(CARD).search(text) and not standalone(PIN).search(text)
    # Django's own reporter, with our filter, still prints the query's.
    django_report = ExceptionReporter(request, type(exc), exc, None).get_traceback_text()
    assert standalone(CARD).search(django_report)


@pytest.mark.parametrize("step", list(FAULTS))
def test_every_webhook_marks_digits_sensitive_for_djangos_own_reports(call, step):
    # What Django's filters and error mails go by, with DEBUG off, whatever ours do.
    response = call.twilio.post(f"/voice/{step}", {**call.base(), "Digits": "1"})
    assert response.wsgi_request.sensitive_post_parameters == ("Digits",)


# Bodies Django cannot parse, and raises on at every read: the report must still be made.
UNPARSABLE = {
    "not utf-8": {"content_type": "application/x-www-form-urlencoded; charset=latin-1"},
    "no length": {
        "content_type": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": "1 kB",
    },
}


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("body", list(UNPARSABLE))
def test_a_report_is_made_of_a_request_whose_body_cannot_be_read(rf, debug, body):
    # Django's report reads request.FILES, unguarded: the error page (DEBUG) or mail would fail.
    request = rf.post("/voice/card/", f"Digits={CARD}", **UNPARSABLE[body])
    exc = RuntimeError("step failed")
    with override_settings(DEBUG=debug):
        reporter = get_exception_reporter_class(request)(request, type(exc), exc, None)
        text = reporter.get_traceback_text() + reporter.get_traceback_html()
    assert "RuntimeError" in text and "/voice/card/" in text
    assert not standalone(CARD).search(text)


@override_settings(DEBUG=True)
@pytest.mark.parametrize("body", list(UNPARSABLE))
def test_a_refused_host_with_such_a_body_gets_its_400_page_under_debug(db, body):
    # The Host check fails before any view, so Django's own page answers: with DEBUG on, the
    # report, which failed on such a body and left the request with no answer at all.
    client = Client(raise_request_exception=False)
    response = client.generic(
        "POST", "/voice/card/", f"Digits={CARD}", HTTP_HOST="evil.example", **UNPARSABLE[body]
    )
    assert response.status_code == 400
    assert "DisallowedHost" in response.content.decode()
