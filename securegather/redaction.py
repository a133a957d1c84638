"""A logging filter that removes keypad digits from every record before any handler formats it.

Sealed values print masked by themselves; this filter is the net under everything else: request
bodies, QueryDict reprs and tracebacks that mention a ``Digits`` parameter (``Digits``,
``encryptedCardDigits``, ``encryptedPinDigits``) in any of the forms Python and Django print.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# Digits=1234 · 'Digits': '1234' · "Digits": ["1234"] · Digits: 1234 (any key ending in "Digits")
_DIGITS_PARAM = re.compile(
    r"""(?P<key>Digits['"]?\s*[:=]\s*\[?\s*['"]?)(?P<value>[^'"&\]\s,}]*)""",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    return _DIGITS_PARAM.sub(lambda m: m.group("key") + REDACTED, text)


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
        return True
