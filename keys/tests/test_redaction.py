import logging
from collections.abc import Iterator
from re._constants import (
    ATOMIC_GROUP,
    BRANCH,
    MAX_REPEAT,
    MIN_REPEAT,
    POSSESSIVE_REPEAT,
    SUBPATTERN,
)
from re._parser import parse

import pytest

from keys.redaction import _DIGITS_PARAM, REDACTED, RedactDigitsFilter, redact


@pytest.mark.parametrize(
    "text",
    [
        "Digits=8264&CallSid=CA1",
        "<QueryDict: {'Digits': ['8264']}>",
        '{"Digits": "8264"}',
        "Digits: 8264",
        "encryptedCardDigits=ab8264cd",
        "{'encryptedPinDigits': '8264'}",
        "('Digits', '8264')",
        "[('Digits', '8264'), ('From', '+1')]",
        "Digits=['5937', '8264']",
        "Digits%3D8264&From=%2B1",
        "Digits 8264",
        # What a client can open a value with, so as to slip past a pattern that wants digits.
        "/voice/card?Digits=[8264",
        "Digits==8264",
        "Digits=,8264",
        "Digits=(8264",
        "Digits=' 8264'",
        "{'Digits': ('8264',)}",
        "'Digits': ')8264'",
        "Digits=]8264",
        "Digits=}8264",
        "Digits=[]8264",
        "Digits=12=8264",
        "digits:\n8264",
    ],
)
def test_digits_parameters_are_redacted(text):
    assert "8264" not in redact(text) and "5937" not in redact(text)
    assert "[redacted]" in redact(text)


def test_what_follows_a_redacted_value_is_kept():
    assert redact("Digits=8264&From=%2B15005550006") == "Digits=[redacted]&From=%2B15005550006"
    assert redact("{'Digits': ['8264'], 'To': ['+1']}") == "{'Digits': [[redacted]], 'To': ['+1']}"


def test_djangos_own_loggers_go_through_the_redacting_handler():
    # Django's default config gives the "django" logger handlers of its own, without the filter.
    django_logger = logging.getLogger("django")
    assert django_logger.handlers == [] and django_logger.propagate
    configured = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    assert [type(f) for h in configured for f in h.filters] == [RedactDigitsFilter]


def repetitions(parsed) -> Iterator[object]:
    """The kind of every repetition in a parsed pattern, nested ones included."""
    for op, av in parsed:
        if op in (MAX_REPEAT, MIN_REPEAT, POSSESSIVE_REPEAT):
            yield op
            yield from repetitions(av[2])
        elif op is SUBPATTERN:
            yield from repetitions(av[3])
        elif op is BRANCH:
            for branch in av[1]:
                yield from repetitions(branch)
        elif op is ATOMIC_GROUP:
            yield from repetitions(av)


def test_every_repetition_in_the_pattern_is_possessive():
    # A Host header or a path is anyone's to fill. A pattern that can backtrack over a run of
    # spaces after the key took seconds for 1,000 of them, growing with their cube (75 s for
    # 3,000): a possessive repetition never gives back what it took, so the text is read once.
    kinds = list(repetitions(parse(_DIGITS_PARAM.pattern, _DIGITS_PARAM.flags)))
    assert kinds and set(kinds) == {POSSESSIVE_REPEAT}


@pytest.mark.parametrize("end", ["&", ",", ")", "x", ""])
def test_a_long_run_of_spaces_after_the_key_is_redacted_whole(end):
    text = "Digits" + " " * 3_000 + end
    assert redact(text) == ("Digits" + " " * 3_000 + REDACTED if end == "x" else text)


def test_the_key_keeps_its_case():
    assert redact("digits=8264") == "digits=[redacted]"


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


def test_filter_redacts_the_stack_a_record_carries():
    # logger.warning(..., stack_info=True) prints each frame's source line, which may hold a
    # query string or a form body spelled out in the code that logs it.
    logger = logging.getLogger("test.redaction")
    stack = 'Stack (most recent call last):\n  File "v.py", line 9\n    post("Digits=8264")'
    record = logger.makeRecord("x", logging.WARNING, "f", 1, "step", (), None, sinfo=stack)
    assert RedactDigitsFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "8264" not in formatted
    assert 'post("Digits=[redacted]' in formatted


def test_filter_redacts_text_passed_as_extra_and_leaves_objects():
    logger = logging.getLogger("test.redaction")
    request = object()
    record = logger.makeRecord(
        "x",
        logging.INFO,
        "f",
        1,
        "step",
        (),
        None,
        extra={"body": "Digits=8264", "request": request},
    )
    assert RedactDigitsFilter().filter(record)
    assert (record.body, record.request) == ("Digits=[redacted]", request)


def test_describe_names_types_and_frames_but_no_message():
    from keys.redaction import describe

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
