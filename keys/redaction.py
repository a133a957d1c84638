"""A logging filter that removes keypad digits from every record before any handler formats it.

Sealed values print masked by themselves; this filter is the net under everything else: request
bodies, QueryDict reprs and tracebacks that mention a ``Digits`` parameter (``Digits``,
``encryptedCardDigits``, ``encryptedPinDigits``) in any of the forms Python and Django print.
Error reports get the same care: :class:`WebhookReporterFilter` and :func:`describe`.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import ItemsView
from types import FrameType
from typing import Any

from django.http import HttpRequest
from django.utils.datastructures import MultiValueDict
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

REDACTED = "[redacted]"
# Where WSGI servers put the query string of a request (gunicorn's RAW_URI is the whole target).
QUERY_META = {"QUERY_STRING", "RAW_URI", "REQUEST_URI"}
# Any key ending in "Digits" (Digits, encryptedCardDigits, …), then how Python, Django, JSON and
# URLs put a value after it: Digits=1234 · Digits%3D1234 · 'Digits': '1234' · ('Digits', '1234')
# · Digits: 1234 · Digits 1234. A list or tuple of values ("Digits": ['1234', '5678']) goes whole.
# A single value goes after whatever brackets, quotes, separators or spaces open it, so that a
# value a client sent as "[1234", "=1234" or "' 1234" is no way around the filter.
# Every repetition is possessive (*+, ++): the text is anyone's (a Host header, a path), and a
# pattern that backtracks over a long run of spaces would hold a worker for minutes.
_SEPARATOR = r"""['"]?+\s*+(?:[:=,]|%3[dD])?+\s*+"""
_DIGITS_PARAM = re.compile(
    rf"""(?P<key>Digits)(?:(?P<list_separator>{_SEPARATOR})(?P<list>\[[^\]\n]++\]?+|\([^)\n]++\)?+)"""
    r"""|(?P<separator>(?:[\s'"\[\](){}:=,]|%3[dD]|%5[bBdD])*+)[^'"&\s,\[\](){}]++)""",
    re.IGNORECASE,
)
# What every LogRecord has; any other attribute came from a call's ``extra``.
_RECORD_ATTRIBUTES = {*vars(logging.makeLogRecord({})), "message", "asctime"}


def _redacted(match: re.Match[str]) -> str:
    if (values := match.group("list")) is not None:
        closed = values[-1] if values[-1] in ")]" else ""
        return match.group("key") + match.group("list_separator") + values[0] + REDACTED + closed
    return match.group("key") + match.group("separator") + REDACTED


def redact(text: str) -> str:
    return _DIGITS_PARAM.sub(_redacted, text)


class RedactDigitsFilter(logging.Filter):
    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not drop the record
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        # Text passed as ``extra``, which a structured formatter would print. Other objects
        # stay as they are: handlers read some (Django's ``request``) as objects.
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


def describe(exc: BaseException) -> str:
    """Where an exception went: each frame's file, line and function, and each type in its chain.

    No exception message and no value: a database error quotes the statement's parameters, a
    parsing error the text it choked on, and either could be what a caller typed.
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    lines = []
    for link in reversed(chain):
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.StackSummary.extract(traceback.walk_tb(link.__traceback__)).format())
        lines.append(f"{type(link).__module__}.{type(link).__qualname__}\n")
    return "".join(lines)


class WebhookReporterFilter(SafeExceptionReporterFilter):
    """Error reports without request data or local variables, whatever DEBUG says.

    Django's filter works only with DEBUG off, and hides only the variables of functions marked
    ``sensitive_variables``; a caller's digits sit in the locals of several frames of each step
    and in the POST data, and the technical 500 page prints both when DEBUG is on.
    """

    def is_active(self, request: HttpRequest | None) -> bool:
        return True

    def get_post_parameters(self, request: HttpRequest | None) -> dict[str, str]:
        if request is None:
            return {}
        try:
            keys = list(request.POST)
        except Exception:  # the body that broke the request would break the report too
            return {}
        return {key: self.cleansed_substitute for key in keys}

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        # The query string, as the server received it: a client can put Digits there too.
        for key in QUERY_META.intersection(meta):
            meta[key] = self.cleansed_substitute
        return meta

    def get_traceback_frame_variables(
        self, request: HttpRequest | None, tb_frame: FrameType
    ) -> ItemsView[str, Any]:
        return {name: self.cleansed_substitute for name in tb_frame.f_locals}.items()


class WebhookExceptionReporter(ExceptionReporter):
    """Django's error report, with the query string's values hidden as well.

    The filter sees POST, the frames and META, but the report takes the query's items and the
    URL with its query from the request itself; a client can send Digits there as well.
    """

    def get_traceback_data(self) -> dict[str, Any]:
        if self.request is not None and not _files_readable(self.request):
            self.request = BodylessRequest(self.request)  # type: ignore[assignment]
        data = super().get_traceback_data()
        if self.request is not None:
            hidden = self.filter.cleansed_substitute
            try:
                data["request_GET_items"] = [(key, hidden) for key in self.request.GET]
            except Exception:  # too many fields: nothing of it, then
                data["request_GET_items"] = []
            uri, query, _ = data["request_insecure_uri"].partition("?")
            data["request_insecure_uri"] = uri + (f"?{hidden}" if query else "")
        return data


def _files_readable(request: HttpRequest) -> bool:
    """Whether the report can read the request's files. Some bodies raise at every read (a form
    in a charset other than UTF-8, a Content-Length that is no number), and Django's report
    reads request.FILES unguarded: the report itself failed, and with DEBUG on the request got no
    answer from Django at all."""
    try:
        request.FILES  # noqa: B018 (read for what it raises)
    except Exception:
        return False
    return True


class BodylessRequest:
    """The request as an error report reads it, with no files: its body broke every read.
    Everything else is the request's own."""

    FILES: MultiValueDict[str, Any] = MultiValueDict()

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self.request, name)
