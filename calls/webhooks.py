"""Decorators every Twilio-facing view wears: signature check and a TwiML answer to any failure.
``twilio_webhook`` puts on, in order, all that a webhook of a call wears.

There is no setting that turns the signature check off, DEBUG included: a switch like that is how
forged requests reach production.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    UnreadablePostError,
)
from django.http.multipartparser import MultiPartParserError
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from audit.models import AuditEvent, RefusalCount
from audit.origins import client_address
from audit.signals import append_failed
from calls.languages import say_attributes
from calls.models import is_call_sid
from keys.redaction import describe

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]


def signed_url(request: HttpRequest) -> str:
    """The URL Twilio signed: the public origin when a proxy sits in front, else this request's."""
    if settings.SECUREGATHER_PUBLIC_URL:
        return settings.SECUREGATHER_PUBLIC_URL.rstrip("/") + request.get_full_path()
    return request.build_absolute_uri()


# What reading a form can raise: past Django's limits (DATA_UPLOAD_MAX_NUMBER_FIELDS,
# DATA_UPLOAD_MAX_MEMORY_SIZE, DATA_UPLOAD_MAX_NUMBER_FILES), which no Twilio request comes near,
# a broken multipart body, a client gone mid-body, a form that names a charset other than UTF-8
# (BadRequest: Django reads application/x-www-form-urlencoded as UTF-8 only), or a Content-Length
# that is no number (ValueError: Django reads it with int(); gunicorn refuses such a request, but
# runserver and other servers pass it on).
UNREADABLE = (
    BadRequest,
    TooManyFieldsSent,
    RequestDataTooBig,
    TooManyFilesSent,
    MultiPartParserError,
    UnreadablePostError,
    ValueError,
)


def unreadable(request: HttpRequest) -> bool:
    """Whether the body cannot be read as a form (UNREADABLE): such a request gets a 400."""
    if getattr(request, "_unreadable", False):
        return True
    try:
        request.POST  # noqa: B018 (parsed here, once, for every later read)
    except UNREADABLE:
        # Remembered: a multipart body's stream is spent, and a second parse would find it empty.
        request._unreadable = True  # type: ignore[attr-defined]
        return True
    return False


def unreadable_refusal() -> HttpResponse:
    return HttpResponseBadRequest("Unreadable request body.")


def has_valid_signature(request: HttpRequest) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.META.get("HTTP_X_TWILIO_SIGNATURE", "")
    if not token or not signature:
        return False
    url = signed_url(request)
    return _has_valid_port(url) and RequestValidator(token).validate(url, request.POST, signature)


def _has_valid_port(url: str) -> bool:
    """Whether the URL's port, if any, is 0-65535: the validator's urlparse raises otherwise.

    Django's host check takes any run of digits for a port ("Host: localhost:99999"), and Twilio
    signs only URLs it could request, so such a request is refused as unsigned, not failed.
    """
    try:
        urlsplit(url).port  # noqa: B018 (parsed for its ValueError)
    except ValueError:
        return False
    return True


def is_foreign_account(request: HttpRequest) -> bool:
    """True when TWILIO_ACCOUNT_SID is set and the request was made for another account."""
    expected = settings.TWILIO_ACCOUNT_SID
    return bool(expected) and not constant_time_compare(
        request.POST.get("AccountSid", ""), expected
    )


def foreign_account_refusal() -> HttpResponse:
    return HttpResponseForbidden("Requests for this Twilio account are not accepted.")


def first_refusal(request: HttpRequest, event: str) -> bool:
    """Count a refusal of an unsigned, forged or malformed request; True when it is the client's
    address's first refusal this minute, of any kind, to be recorded as its own row, as before.

    The rest of the minute's are counted in audit.models.RefusalCount and recorded as one
    ``refusals_counted`` row later, so 200 forged requests in a minute add 2 rows to the chain,
    not 200, and wait on the chain's head twice.
    """
    address = client_address(request)
    # Only an IP address is a source; anything else (a test client's, a misconfigured server's)
    # is counted under "".
    source = address if _is_ip(address) else ""
    return RefusalCount.first_this_minute(source, event)


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    # The counter's column holds an IPv6 address's 45 characters, not a long zone after it.
    return len(address) <= 45


def audit_malformed(request: HttpRequest, reason: str) -> None:
    """A webhook request refused as malformed (``reason``: what was wrong), with its path only."""
    if not first_refusal(request, AuditEvent.Event.MALFORMED_REQUEST):
        return
    AuditEvent.record(
        AuditEvent.Event.MALFORMED_REQUEST,
        AuditEvent.Outcome.FAILURE,
        request=request,
        path=request.path,
        reason=reason,
    )


def audit_failure(request: HttpRequest, exc: Exception, **detail: Any) -> None:
    """A request's unexpected failure as a ``step_failed`` row: its path and the error's type,
    never its message. A row that cannot be written is logged, not raised: the database may be
    what failed."""
    try:
        AuditEvent.record(
            AuditEvent.Event.STEP_FAILED,
            AuditEvent.Outcome.FAILURE,
            request=request,
            path=request.path,
            error=type(exc).__name__,
            **detail,
        )
    except Exception:
        logger.error("could not audit the failure of %s", request.path)
        append_failed.send(sender=AuditEvent)


def _audit_rejection(request: HttpRequest, event: str) -> None:
    if not first_refusal(request, event):
        return
    sid = request.POST.get("CallSid", "")
    # An unsigned request's CallSid is the sender's word: keep it only in Twilio's own shape.
    if not (sid.startswith("CA") and len(sid) == 34 and sid.isascii() and sid.isalnum()):
        sid = ""
    AuditEvent.record(
        event, AuditEvent.Outcome.FAILURE, request=request, call_sid=sid, path=request.path
    )


def twilio_signed(view: View) -> View:
    """403 for a request without a valid X-Twilio-Signature or from another Twilio account;
    400 for one whose body cannot be read as a form."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if unreadable(request):
            audit_malformed(request, "body")
            return unreadable_refusal()
        if not has_valid_signature(request):
            _audit_rejection(request, AuditEvent.Event.SIGNATURE_REJECTED)
            return HttpResponseForbidden("Invalid Twilio signature.")
        if is_foreign_account(request):
            _audit_rejection(request, AuditEvent.Event.FOREIGN_ACCOUNT)
            return foreign_account_refusal()
        return view(request, *args, **kwargs)

    return wrapper


def apology() -> VoiceResponse:
    response = VoiceResponse()
    response.say(
        _("Sorry, we cannot take your details right now. Please call again later. Goodbye."),
        **say_attributes(),
    )
    response.hangup()
    return response


def twiml(response: VoiceResponse, status: int = 200) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml", status=status)


def twiml_on_error(view: View) -> View:
    """Any failure inside a step ends the call politely: HTTP 200 TwiML, never a debug page.

    Twilio keeps whatever a webhook answers in its debugger, and Django's technical 500 page
    prints POST data when DEBUG is on, so no error may reach Django's handler from here.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Exception as exc:
            # The type and where it happened; messages and locals could carry request data.
            logger.error(
                "webhook %s failed: %s\n%s", request.path, type(exc).__name__, describe(exc)
            )
            audit_failure(request, exc)
            return twiml(apology())

    return wrapper


def names_a_call(view: View) -> View:
    """400 for a request without a CallSid in Twilio's shape: every webhook of a call has one."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if is_call_sid(request.POST.get("CallSid", "")):
            return view(request, *args, **kwargs)
        # Signed, so sent by Twilio or with its Auth Token: worth a row. Not the CallSid itself,
        # which is not in Twilio's shape and could hold anything.
        audit_malformed(request, "call_sid")
        return HttpResponseBadRequest("Missing or malformed CallSid.")

    return wrapper


def twilio_webhook(view: View) -> View:
    """What every webhook of a call wears, outermost first: no CSRF token (Twilio has none to
    send), POST only, the caller's Digits left out of error reports, any failure answered with
    TwiML, a valid Twilio signature, and a CallSid."""
    checked = twiml_on_error(twilio_signed(names_a_call(view)))
    return csrf_exempt(require_POST(sensitive_post_parameters("Digits")(checked)))
