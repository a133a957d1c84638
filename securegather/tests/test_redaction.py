import logging

import pytest

from securegather.redaction import RedactDigitsFilter, redact


@pytest.mark.parametrize(
    "text",
    [
        "Digits=8264&CallSid=CA1",
        "<QueryDict: {'Digits': ['8264']}>",
        '{"Digits": "8264"}',
        "Digits: 8264",
        "encryptedCardDigits=ab8264cd",
        "{'encryptedPinDigits': '8264'}",
    ],
)
def test_digits_parameters_are_redacted(text):
    assert "8264" not in redact(text)
    assert "[redacted]" in redact(text)


def test_other_text_is_left_alone():
    assert redact("call CA123 took 8264 ms") == "call CA123 took 8264 ms"


def test_filter_redacts_arguments_and_tracebacks():
    logger = logging.getLogger("test.redaction")
    record = logger.makeRecord("x", logging.ERROR, "f", 1, "got %s", ({"Digits": "8264"},), None)
    try:
        raise ValueError("Digits=8264")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactDigitsFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "8264" not in formatted
    assert "ValueError" in formatted


def test_describe_names_types_and_frames_but_no_message():
    from securegather.redaction import describe

    def inner(secret):
        raise ValueError(f"invalid literal {secret}")

    value = "".join(["82", "64"])  # not in any source line the traceback quotes
    try:
        try:
            inner(value)
        except ValueError as exc:
            raise RuntimeError("wrapped " + str(exc)) from exc
    except RuntimeError as exc:
        text = describe(exc)
    assert "builtins.ValueError" in text and "builtins.RuntimeError" in text
    assert "in inner" in text
    # The source lines are there (code, not data); the value in the messages is not.
    assert "8264" not in text
