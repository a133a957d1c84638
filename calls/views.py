"""The voice webhooks, one view per step. Each answers TwiML built by calls.twiml.

Every step reads its state from the CallSession row, locked for the length of the step so that
two deliveries of the same webhook cannot both advance it; a redelivery (same
I-Twilio-Idempotency-Token) hears the first answer again, and a call past its lifetime is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.utils import timezone, translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from twilio.twiml.voice_response import VoiceResponse

from accounts import lockout
from accounts.models import is_four_digits
from accounts.resolvers import Locked, ResolverUnavailable
from audit import chain as auditchain
from audit.models import AuditEvent
from calls import languages
from calls import twiml as say
from calls.models import (
    CallSession,
    clean_account_sid,
    clean_caller,
    clean_idempotency_token,
    is_call_sid,
)
from calls.webhooks import (
    View,
    apology,
    audit_malformed,
    foreign_account_refusal,
    has_valid_signature,
    is_foreign_account,
    twilio_signed,
    twiml,
    twiml_on_error,
    unreadable,
    unreadable_refusal,
)
from keys.redaction import describe
from securegather import statements

logger = logging.getLogger(__name__)
Event, Outcome = AuditEvent.Event, AuditEvent.Outcome
CALL_STATUSES = {
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
}
# What a status callback subscribed to progress events says of a call still under way: no end.
# Anything else, an unknown status included, ends the call and wipes what is left.
UNDER_WAY = {"queued", "initiated", "ringing", "in-progress"}


@contextmanager
def _step() -> Iterator[None]:
    """A step's transaction. Its audit rows are appended together at its end (batched), the
    session's UPDATE goes with the first statement of that append (deferring), and when the
    step is the whole transaction (not so inside a test's), its COMMIT with the last."""
    with transaction.atomic():
        # Only a block that Django commits at its end (not one nested in another, nor one
        # entered with autocommit already off) may have its COMMIT sent early.
        ends_transaction = len(connection.atomic_blocks) == 1 and connection.commit_on_exit
        with statements.deferring(), auditchain.batched(commit=ends_transaction):
            yield


def _audit(
    request: HttpRequest, session: CallSession, event: str, outcome: str, **detail: Any
) -> None:
    AuditEvent.record(
        event, outcome, request=request, call_sid=session.call_sid, caller=session.caller, **detail
    )


def _audit_sessionless(request: HttpRequest, event: str, outcome: str, **detail: Any) -> None:
    """An audit row for a call with no session here: its CallSid and caller from the request."""
    AuditEvent.record(
        event,
        outcome,
        request=request,
        call_sid=request.POST["CallSid"],
        caller=clean_caller(request.POST.get("From", "")),
        **detail,
    )


def _locked_session(request: HttpRequest, *, new: bool = False) -> tuple[CallSession, bool]:
    """The call's session under a row lock, created (as a fresh start) if Twilio's is unknown.

    ``new``: the step that opens a call expects no row, so it inserts first (one round trip
    fewer) and reads only when a racing delivery got there before it.
    """
    sid = request.POST["CallSid"]
    if not new and (session := CallSession.locked(sid)) is not None:
        return session, False
    session = CallSession(
        call_sid=sid,
        account_sid=clean_account_sid(request.POST.get("AccountSid", "")),
        caller=clean_caller(request.POST.get("From", "")),
    )
    # INSERT … ON CONFLICT DO NOTHING: no savepoint, and a racing delivery's row wins.
    if not session.insert_new():
        # That delivery's step holds the row: wait for it to finish, then see its result.
        return CallSession.objects.select_for_update().get(call_sid=sid), False
    # No session, but the audit log knows the call: its session was purged, and this is a
    # captured request played again (Twilio's signatures carry no time). Refusals of unsigned
    # requests and status callbacks before the call's first step name a CallSid too, but no
    # step of that call ever ran. Raised, the step's transaction rolls back with the row just
    # inserted.
    if _KNOWN_CALL.rows(sid):
        raise CallReplayed
    return session, True


# Whether a step of the call ever ran (see _locked_session): compiled once (statements).
_KNOWN_CALL = statements.Query(
    lambda sid: (
        AuditEvent.objects.filter(call_sid=sid)
        .exclude(
            event__in=[Event.SIGNATURE_REJECTED, Event.FOREIGN_ACCOUNT, Event.UNKNOWN_CALL_STATUS]
        )
        .order_by()
        .values_list("id")[:1]
    )
)


class CallReplayed(Exception):
    """A step for a call that ended and was purged: refused, whatever its signature."""


def refuses_replays(view: View) -> View:
    """Answer a replayed call's step with a goodbye and an audit row; nothing else happens."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except CallReplayed:
            _audit_sessionless(request, Event.REPLAY_REFUSED, Outcome.FAILURE, step=request.path)
            return twiml(say.call_finished())

    return wrapper


def _reply(request: HttpRequest, session: CallSession, response: VoiceResponse) -> HttpResponse:
    """Save the step with its answer, which a redelivery of the same webhook hears again."""
    answer = str(response)
    session.remember(_idempotency_token(request), answer)
    session.save_step()
    return HttpResponse(answer, content_type="text/xml")


def _idempotency_token(request: HttpRequest) -> str:
    return clean_idempotency_token(request.META.get("HTTP_I_TWILIO_IDEMPOTENCY_TOKEN", ""))


def _refusal(request: HttpRequest, session: CallSession, step: str) -> HttpResponse | None:
    """The answer to a redelivered step (the first one again) or to a call past its lifetime."""
    if (answer := session.answered(_idempotency_token(request))) is not None:
        _audit(request, session, Event.DUPLICATE_DELIVERY, Outcome.INFO, step=step)
        return HttpResponse(answer, content_type="text/xml")
    if not session.is_finished and session.is_expired(timezone.now()):
        session.finish(CallSession.Outcome.EXPIRED)
        _audit(request, session, Event.SESSION_EXPIRED, Outcome.FAILURE, step=step)
        return _reply(request, session, say.session_expired())
    return None


def _locked_out(request: HttpRequest, session: CallSession, scope: str) -> HttpResponse:
    session.finish(CallSession.Outcome.LOCKED_OUT)
    _audit(request, session, Event.LOCKED_OUT, Outcome.FAILURE, action="refused", scope=scope)
    return _reply(request, session, say.locked())


def _reject_invalid(request: HttpRequest, session: CallSession, prompt: str) -> VoiceResponse:
    digits = request.POST.get("Digits", "")
    _audit(
        request,
        session,
        Event.INVALID_INPUT,
        Outcome.FAILURE,
        prompt=prompt,
        reason="empty" if not digits else "not_4_digits",
        tries=session.tries + 1,
    )
    if session.count_invalid():
        _audit(request, session, Event.RETRIES_EXHAUSTED, Outcome.FAILURE, prompt=prompt)
        return say.retries_exhausted()
    return say.ask_card(retry=True) if prompt == "card" else say.ask_pin(retry=True)


def _out_of_order(request: HttpRequest, session: CallSession, step: str) -> VoiceResponse:
    """A step that does not fit the session's state: repeat the prompt the call is really at."""
    _audit(request, session, Event.OUT_OF_ORDER, Outcome.FAILURE, step=step, state=session.state)
    if session.is_finished:
        return say.call_finished()
    if session.state == CallSession.State.AWAITING_PIN:
        return say.ask_pin()
    return say.ask_card()


def _require_call_sid(request: HttpRequest) -> HttpResponse | None:
    if is_call_sid(request.POST.get("CallSid", "")):
        return None
    # Signed, so sent by Twilio or with its Auth Token: worth a row. Not the CallSid itself,
    # which is not in Twilio's shape and could hold anything.
    audit_malformed(request, "call_sid")
    return HttpResponseBadRequest("Missing or malformed CallSid.")


@csrf_exempt
@require_POST
@sensitive_post_parameters("Digits")
@twiml_on_error
@twilio_signed
@refuses_replays
def incoming(request: HttpRequest) -> HttpResponse:
    """ "A call comes in": open the session and ask for the card's last 4 digits."""
    if bad := _require_call_sid(request):
        return bad
    with _step():
        session, created = _locked_session(request, new=True)
        if created:
            _audit(request, session, Event.CALL_STARTED, Outcome.INFO)
            if (lock := lockout.caller_lock(session.caller)) is not None:
                return _locked_out(request, session, lock.scope)
            return _reply(request, session, say.opening())
        if refused := _refusal(request, session, "incoming"):
            return refused
        # Twilio redelivered the call's first webhook: answer with the prompt it is at.
        return _reply(request, session, _out_of_order(request, session, "incoming"))


@csrf_exempt
@require_POST
@sensitive_post_parameters("Digits")
@twiml_on_error
@twilio_signed
@refuses_replays
def card(request: HttpRequest) -> HttpResponse:
    """The card's last 4 digits: validate, seal at once, ask for the PIN."""
    if bad := _require_call_sid(request):
        return bad
    with _step():
        session, created = _locked_session(request)
        if not created and (refused := _refusal(request, session, "card")):
            return refused
        if created or session.state != CallSession.State.AWAITING_CARD:
            return _reply(request, session, _out_of_order(request, session, "card"))
        digits = request.POST.get("Digits", "")
        if not is_four_digits(digits):
            return _reply(request, session, _reject_invalid(request, session, "card"))
        sealed = session.accept_card(digits)
        _audit(request, session, Event.CARD_ENTERED, Outcome.SUCCESS, key_id=sealed.key_id or "")
        return _reply(request, session, say.ask_pin())


@csrf_exempt
@require_POST
@sensitive_post_parameters("Digits")
@twiml_on_error
@twilio_signed
@refuses_replays
def pin(request: HttpRequest) -> HttpResponse:
    """The PIN: validate, seal, resolve the account, speak the result, wipe."""
    if bad := _require_call_sid(request):
        return bad
    with _step():
        session, created = _locked_session(request)
        if not created and (refused := _refusal(request, session, "pin")):
            return refused
        if created or session.state != CallSession.State.AWAITING_PIN:
            return _reply(request, session, _out_of_order(request, session, "pin"))
        digits = request.POST.get("Digits", "")
        if not is_four_digits(digits):
            return _reply(request, session, _reject_invalid(request, session, "pin"))
        sealed = session.accept_pin(digits)
        _audit(request, session, Event.PIN_ENTERED, Outcome.SUCCESS, key_id=sealed.key_id or "")
        try:
            resolution = session.verify()
        except Locked as exc:
            return _locked_out(request, session, exc.scope)
        except ResolverUnavailable:
            session.finish(CallSession.Outcome.RESOLVER_UNAVAILABLE)
            _audit(request, session, Event.RESOLVER_UNAVAILABLE, Outcome.FAILURE)
            return _reply(request, session, say.resolver_unavailable())
        if resolution is None:
            session.finish(CallSession.Outcome.NOT_FOUND)
            _audit(request, session, Event.NOT_FOUND, Outcome.FAILURE)
            return _reply(request, session, say.not_found())
        session.finish(CallSession.Outcome.VERIFIED, resolution.account_number)
        AuditEvent.record(
            Event.VERIFIED,
            Outcome.SUCCESS,
            request=request,
            call_sid=session.call_sid,
            caller=session.caller,
            account_number=resolution.account_number,
        )
        return _reply(request, session, say.found(resolution))


@csrf_exempt
@require_POST
@sensitive_post_parameters("Digits")
@twiml_on_error
@twilio_signed
@refuses_replays
def language(request: HttpRequest) -> HttpResponse:
    """The opening menu's answer: 1 English, 2 Spanish, anything else the configured language."""
    if bad := _require_call_sid(request):
        return bad
    with _step():
        session, created = _locked_session(request)
        if not created and (refused := _refusal(request, session, "language")):
            return refused
        if created or session.state != CallSession.State.AWAITING_CARD:
            return _reply(request, session, _out_of_order(request, session, "language"))
        session.language = languages.for_keypress(request.POST.get("Digits", ""))
        _audit(request, session, Event.LANGUAGE_CHOSEN, Outcome.INFO, language=session.language)
        with translation.override(languages.django_language(session.language)):
            return _reply(request, session, say.ask_card())


@csrf_exempt
@require_POST
@sensitive_post_parameters("Digits")
@twiml_on_error
@twilio_signed
def status(request: HttpRequest) -> HttpResponse:
    """Twilio's status callback: the call ended, so wipe whatever is still sealed."""
    if bad := _require_call_sid(request):
        return bad
    call_status = request.POST.get("CallStatus", "")
    recorded_status = call_status if call_status in CALL_STATUSES else "other"
    with _step():
        session = CallSession.locked(request.POST["CallSid"])
        if session is None:
            # Nothing to wipe, but the callback is on record (and not taken for a step: see
            # _KNOWN_CALL).
            _audit_sessionless(request, Event.UNKNOWN_CALL_STATUS, Outcome.INFO)
        elif call_status in UNDER_WAY and session.ended_at is None:
            # The caller may be typing: ending the call now would hang up on them.
            _audit(request, session, Event.CALL_PROGRESS, Outcome.INFO, call_status=call_status)
        else:
            # Ended already: by this callback delivered before, or by purge_sessions before a
            # late first one. Either way nothing is left to wipe, and Twilio's status is kept.
            already_ended = session.ended_at is not None
            if not already_ended:
                session.end()
                session.save_step()
            _audit(
                request,
                session,
                Event.CALL_ENDED,
                Outcome.INFO,
                call_status=recorded_status,
                **({"already_ended": True} if already_ended else {}),
            )
    return twiml(VoiceResponse())


@csrf_exempt
@require_POST
@sensitive_post_parameters("Digits")
def fallback(request: HttpRequest) -> HttpResponse:
    """Twilio's fallback URL, called when a step failed or timed out: an apology, no database.

    The database may be what failed, so nothing here touches it: a bad signature is refused
    without an audit row, and the log line names only Twilio's error code.
    """
    try:
        if unreadable(request):
            logger.warning("fallback refused: unreadable request body")
            return unreadable_refusal()
        if not has_valid_signature(request):
            logger.warning("fallback refused: invalid Twilio signature")
            return HttpResponseForbidden("Invalid Twilio signature.")
        if is_foreign_account(request):
            logger.warning("fallback refused: request for another Twilio account")
            return foreign_account_refusal()
        code = request.POST.get("ErrorCode", "")
        # Twilio's error codes are 5 ASCII digits (11200: HTTP retrieval failure); nothing else.
        if not (code.isascii() and code.isdigit() and len(code) == 5):
            code = "?"
        logger.error("fallback answered for Twilio error %s", code)
    except Exception as exc:
        # The last resort answers whatever happens, and never with a debug page.
        logger.error("fallback failed: %s\n%s", type(exc).__name__, describe(exc))
    return twiml(apology())
