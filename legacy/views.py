"""POST /api/decrypt-gather: the backend of Twilio's tutorial, answering as its Function did.

The tutorial's ``encrypted-gather`` Function posts ``encryptedCardDigits`` and
``encryptedPinDigits`` (JSON, by axios) and speaks ``account`` and ``balance`` from a 200, or the
not-found message for anything else. Unlike its ``decrypt-gather``, this one takes each ciphertext
once, can require a bearer token, resolves through ``accounts`` (lockout included) and audits.
"""

from __future__ import annotations

import json
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotFound,
    JsonResponse,
)
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from accounts import lockout
from accounts.models import is_four_digits
from accounts.resolvers import Locked, ResolverUnavailable, resolve
from audit.models import AuditEvent
from calls.webhooks import UNREADABLE, View, audit_failure, first_refusal, unreadable
from legacy import ciphertext
from legacy.models import AcceptedCiphertext

Event, Outcome = AuditEvent.Event, AuditEvent.Outcome
FIELDS = ("encryptedCardDigits", "encryptedPinDigits")


# Who this API's rows name as acting: the tutorial's Function, holding the bearer token.
ACTOR = "api"


def _audit(request: HttpRequest, event: str, outcome: str, **detail: Any) -> None:
    AuditEvent.record(
        event, outcome, request=request, actor=ACTOR, channel=AuditEvent.Channel.API, **detail
    )


def _bad_request(request: HttpRequest, reason: str) -> HttpResponse:
    # One answer for every unreadable request: a prober learns nothing about which check failed.
    # A flood of them is counted, not recorded row by row (calls.webhooks.first_refusal).
    if first_refusal(request, Event.MALFORMED_REQUEST):
        _audit(request, Event.MALFORMED_REQUEST, Outcome.FAILURE, reason=reason)
    return HttpResponseBadRequest("Bad request", content_type="text/plain")


def audits_failures(view: View) -> View:
    """An unexpected failure leaves its row (``step_failed``) before Django reports it: the
    ciphertexts are taken by then, and the audit log says what became of them."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Exception as exc:
            audit_failure(request, exc, actor=ACTOR, channel=AuditEvent.Channel.API)
            raise

    return wrapper


def _not_found() -> HttpResponse:
    return HttpResponseNotFound("No data found", content_type="text/plain")


def _bearer(request: HttpRequest) -> str:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def _authorized(request: HttpRequest) -> bool:
    token = settings.SECUREGATHER_API_TOKEN
    return not token or constant_time_compare(_bearer(request), token)


def _caller() -> str:
    """The lockout's caller for a request: the configured token it was authorized by (the API
    forwards no caller number), or the open API's one caller when it takes none."""
    return lockout.api_caller(settings.SECUREGATHER_API_TOKEN)


def _fields(request: HttpRequest) -> dict[str, object] | None:
    """The posted fields, from a JSON object (axios's default) or a form; None if unreadable."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError, RecursionError, *UNREADABLE):
            # RecursionError: "[[[[…" nested deeper than the parser goes; UNREADABLE: past
            # DATA_UPLOAD_MAX_MEMORY_SIZE, or the client gone mid-body.
            return None
        return body if isinstance(body, dict) else None
    if unreadable(request):
        return None
    return {name: request.POST.get(name) for name in FIELDS}


@csrf_exempt
@require_POST
@never_cache
@sensitive_post_parameters(*FIELDS)
@audits_failures
@sensitive_variables("key", "body", "fields", "raws", "card", "card_last4", "pin")
def decrypt_gather(request: HttpRequest) -> HttpResponse:
    """Decrypt both values, take each ciphertext once, resolve: 200 JSON or 404 "No data found"."""
    key = ciphertext.legacy_key()
    if key is None:
        return _not_found()  # SECUREGATHER_LEGACY_KEY is not set: the API is off.
    if not _authorized(request):
        if first_refusal(request, Event.UNAUTHORIZED):
            _audit(request, Event.UNAUTHORIZED, Outcome.FAILURE)
        response = HttpResponse("Unauthorized", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="securegather"'
        return response
    fields = _fields(request)
    if fields is None:
        return _bad_request(request, "body")
    try:
        raws = [ciphertext.decode(fields.get(name)) for name in FIELDS]
        card, pin = (ciphertext.open_raw(raw, key) for raw in raws)
    except ciphertext.UnreadableCiphertext:
        return _bad_request(request, "ciphertext")
    with transaction.atomic():
        # Both are marked used before anything else happens: a replay of either is refused,
        # whatever this request's outcome.
        if not all([AcceptedCiphertext.accept(raw) for raw in raws]):
            _audit(request, Event.REPLAY_REFUSED, Outcome.FAILURE)
            return _not_found()
    if not (is_four_digits(card) and is_four_digits(pin)):
        _audit(request, Event.INVALID_INPUT, Outcome.FAILURE, reason="not_4_digits")
        return _not_found()
    # One transaction, its audit rows appended together at its end, as a call's step: the
    # chain's head is always the last lock a verification takes (after its counters and the
    # guessing watch's window), so no two verifications wait on each other in turn.
    with transaction.atomic(), AuditEvent.batched():
        try:
            resolution = resolve(
                card,
                pin,
                caller="",
                channel=AuditEvent.Channel.API,
                actor=ACTOR,
                caller_counter=_caller(),
            )
        except Locked as exc:
            # 404, not 429: the Function says "not located" for any non-2xx anyway, and a
            # status of its own would tell a guesser that the card or caller they are trying is
            # a real one. The rows are staff-only: they name each account a card's lock refused.
            for account_number in exc.accounts or [""]:
                _audit(
                    request,
                    Event.LOCKED_OUT,
                    Outcome.FAILURE,
                    scope=exc.scope,
                    account_number=account_number,
                )
            return _not_found()
        except ResolverUnavailable:
            _audit(request, Event.RESOLVER_UNAVAILABLE, Outcome.FAILURE)
            return HttpResponse("Service unavailable", status=503, content_type="text/plain")
        if resolution is None:
            _audit(request, Event.NOT_FOUND, Outcome.FAILURE)
            return _not_found()
        _audit(request, Event.VERIFIED, Outcome.SUCCESS, account_number=resolution.account_number)
        return JsonResponse(
            {"account": resolution.account_number, "balance": f"{resolution.balance:.2f}"}
        )
