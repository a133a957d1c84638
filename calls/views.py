"""The voice webhooks, one view per step. Each answers TwiML built by calls.twiml.

Every step reads its state from the CallSession row, locked for the length of the step so that
two deliveries of the same webhook cannot both advance it; a redelivery (same
I-Twilio-Idempotency-Token) hears the first answer again, and a call past its lifetime is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone, translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from twilio.twiml.voice_response import VoiceResponse

from accounts import lockout
from accounts.models import is_four_digits
from accounts.resolvers import Locked, ResolverUnavailable
from audit.models import AuditEvent
from calls import languages
from calls import twiml as say
from calls.models import (
    CallSession,
    clean_account_sid,
    clean_attestation,
    clean_caller,
    clean_idempotency_token,
)
from calls.webhooks import (
    View,
    apology,
    foreign_account_refusal,
    has_valid_signature,
    is_foreign_account,
    twilio_webhook,
    twiml,
    unreadable,
    unreadable_refusal,
)
from keys.redaction import describe
from keys.sealed import sealed_by

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
# Audit rows that name a call without a step of it having run: refusals of requests that were
# not Twilio's, and status callbacks for a call with no session (see _locked_session).
NOT_STEPS = [Event.SIGNATURE_REJECTED, Event.FOREIGN_ACCOUNT, Event.UNKNOWN_CALL_STATUS]
# A step's view: the request and the call's session, locked; what the caller hears next.
Step = Callable[[HttpRequest, CallSession], VoiceResponse]


class CallReplayed(Exception):
    """A step for a call that ended and was purged: refused, whatever its signature."""


def twilio_step(*, expects: str = "", opens_call: bool = False) -> Callable[[Step], View]:
    """A step of the call flow: the webhook's rules, then one transaction with the call's
    session locked until it ends, and the step's audit rows appended together at its end.

    ``expects``: the state the step answers, or ``opens_call`` for the first step, which only a
    call without a session is at. The view runs only for a step that fits; a redelivery hears
    the answer it had, a call past its lifetime is ended, and any other step hears the prompt
    the call is at. Whatever the view answers is kept for a redelivery of the same webhook.
    """

    def decorate(step: Step) -> View:
        # Audit rows name a step by its view's name: "incoming", "card", "pin", "language".
        name = step.__name__

        @wraps(step)
        def view(request: HttpRequest) -> HttpResponse:
            try:
                with transaction.atomic(), AuditEvent.batched():
                    session, created = _locked_session(request, opens_call=opens_call)
                    token = _idempotency_token(request)
                    if not created and (answer := session.answered(token)) is not None:
                        _audit(request, session, Event.DUPLICATE_DELIVERY, Outcome.INFO, step=name)
                        return HttpResponse(answer, content_type="text/xml")
                    # The first step fits a call it started; any other, a session at its state.
                    fits = created if opens_call else not created and session.state == expects
                    if not created and session.expire(timezone.now()):
                        _audit(request, session, Event.SESSION_EXPIRED, Outcome.FAILURE, step=name)
                        response = say.session_expired()
                    elif fits:
                        response = step(request, session)
                    else:
                        response = _out_of_order(request, session, name)
                    return _reply(session, token, response)
            except CallReplayed:
                # Outside the step's transaction, which rolled back the session it inserted.
                _audit_sessionless(
                    request, Event.REPLAY_REFUSED, Outcome.FAILURE, step=request.path
                )
                return twiml(say.call_finished())

        return twilio_webhook(view)

    return decorate


def _locked_session(request: HttpRequest, *, opens_call: bool) -> tuple[CallSession, bool]:
    """The call's session under a row lock, and whether this step started it: afresh when
    Twilio names a call that has none here.

    The step that opens a call expects no row, so it inserts one without reading first.
    """
    sid = request.POST["CallSid"]
    if not opens_call and (session := CallSession.locked(sid)) is not None:
        return session, False
    session, created = CallSession.start(
        sid,
        account_sid=clean_account_sid(request.POST.get("AccountSid", "")),
        caller=clean_caller(request.POST.get("From", "")),
        # Twilio sends it on every webhook of the call; the first one's is the call's.
        attestation=clean_attestation(request.POST.get("StirVerstat", "")),
    )
    # No session, but the audit log knows the call: its session was purged, and this is a
    # captured request played again (Twilio's signatures carry no time). Raised, the step's
    # transaction rolls back with the row just inserted.
    if created and AuditEvent.objects.filter(call_sid=sid).exclude(event__in=NOT_STEPS).exists():
        raise CallReplayed
    return session, created


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


def _reply(session: CallSession, token: str, response: VoiceResponse) -> HttpResponse:
    """Save the step with its answer, which a redelivery of the same webhook hears again."""
    answer = str(response)
    session.remember(token, answer)
    session.save_step()
    return HttpResponse(answer, content_type="text/xml")


def _idempotency_token(request: HttpRequest) -> str:
    return clean_idempotency_token(request.META.get("HTTP_I_TWILIO_IDEMPOTENCY_TOKEN", ""))


def _locked_out(
    request: HttpRequest, session: CallSession, scope: str, accounts: Sequence[str] = ()
) -> VoiceResponse:
    """Refuse the call for a lock. Its rows (staff-only) name each account a card's or owner's
    lock refused it for; the caller hears the same whether the card is anyone's or not."""
    session.lock_out()
    for account_number in accounts or [""]:
        _audit(
            request,
            session,
            Event.LOCKED_OUT,
            Outcome.FAILURE,
            action="refused",
            scope=scope,
            account_number=account_number,
        )
    return say.locked()


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


# A resolver's reason as the audit row keeps it: a word like "timeout", "circuit_open" or
# "http_502". Anything else (a resolver's own message, which might quote a value) is "other".
REASON = re.compile(r"[A-Za-z][A-Za-z_]{0,39}(?:_[0-9]{3})?")


def _reason(exc: ResolverUnavailable) -> str:
    return str(exc) if REASON.fullmatch(str(exc)) else "other"


@twilio_step(opens_call=True)
def incoming(request: HttpRequest, session: CallSession) -> VoiceResponse:
    """ "A call comes in": open the session and ask for the card's last 4 digits."""
    _audit(request, session, Event.CALL_STARTED, Outcome.INFO)
    # A fully attested caller may be an account's owner, whom strangers spoofing its number
    # must not lock out: the PIN step decides, by the owner's own counter.
    if not session.is_fully_attested and (lock := lockout.caller_lock(session.caller)) is not None:
        return _locked_out(request, session, lock.scope)
    return say.opening()


@twilio_step(expects=CallSession.State.AWAITING_CARD)
def language(request: HttpRequest, session: CallSession) -> VoiceResponse:
    """The opening menu's answer: 1 English, 2 Spanish, anything else the configured language."""
    session.choose_language(request.POST.get("Digits", ""))
    _audit(request, session, Event.LANGUAGE_CHOSEN, Outcome.INFO, language=session.language)
    # The middleware activated the language the call had before this step chose one.
    with translation.override(languages.django_language(session.language)):
        return say.ask_card()


@twilio_step(expects=CallSession.State.AWAITING_CARD)
def card(request: HttpRequest, session: CallSession) -> VoiceResponse:
    """The card's last 4 digits: validate, seal at once, ask for the PIN."""
    digits = request.POST.get("Digits", "")
    if not is_four_digits(digits):
        return _reject_invalid(request, session, "card")
    sealed = session.accept_card(digits)
    _audit(request, session, Event.CARD_ENTERED, Outcome.SUCCESS, key_id=sealed_by(sealed))
    return say.ask_pin()


@twilio_step(expects=CallSession.State.AWAITING_PIN)
def pin(request: HttpRequest, session: CallSession) -> VoiceResponse:
    """The PIN: validate, seal, resolve the account, speak the result, wipe."""
    digits = request.POST.get("Digits", "")
    if not is_four_digits(digits):
        return _reject_invalid(request, session, "pin")
    sealed = session.accept_pin(digits)
    _audit(request, session, Event.PIN_ENTERED, Outcome.SUCCESS, key_id=sealed_by(sealed))
    try:
        resolution = session.verify()
    except Locked as exc:
        return _locked_out(request, session, exc.scope, exc.accounts)
    except ResolverUnavailable as exc:
        session.finish(CallSession.Outcome.RESOLVER_UNAVAILABLE)
        _audit(request, session, Event.RESOLVER_UNAVAILABLE, Outcome.FAILURE, reason=_reason(exc))
        return say.resolver_unavailable()
    if resolution is None:
        session.finish(CallSession.Outcome.NOT_FOUND)
        _audit(request, session, Event.NOT_FOUND, Outcome.FAILURE)
        return say.not_found()
    session.finish(CallSession.Outcome.VERIFIED, resolution.account_number)
    _audit(
        request, session, Event.VERIFIED, Outcome.SUCCESS, account_number=resolution.account_number
    )
    return say.found(resolution)


@twilio_webhook
def status(request: HttpRequest) -> HttpResponse:
    """Twilio's status callback: the call ended, so wipe whatever is still sealed.

    Not a step: it starts no session, and a redelivery of it only adds an audit row.
    """
    call_status = request.POST.get("CallStatus", "")
    recorded_status = call_status if call_status in CALL_STATUSES else "other"
    with transaction.atomic(), AuditEvent.batched():
        session = CallSession.locked(request.POST["CallSid"])
        if session is None:
            # Nothing to wipe, but the callback is on record (and not taken for a step: see
            # NOT_STEPS).
            _audit_sessionless(request, Event.UNKNOWN_CALL_STATUS, Outcome.INFO)
        elif call_status in UNDER_WAY and not session.is_ended:
            # The caller may be typing: ending the call now would hang up on them.
            _audit(request, session, Event.CALL_PROGRESS, Outcome.INFO, call_status=call_status)
        else:
            # Ended already: by this callback delivered before, or by purge_sessions before a
            # late first one. Either way nothing is left to wipe, and Twilio's status is kept.
            already_ended = session.is_ended
            if not already_ended:
                session.end()
                session.save_step()
            ended = {"already_ended": True} if already_ended else {}
            _audit(
                request,
                session,
                Event.CALL_ENDED,
                Outcome.INFO,
                call_status=recorded_status,
                **ended,
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
