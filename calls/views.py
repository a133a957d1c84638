"""The voice webhooks, one view per step. Each answers TwiML built by calls.twiml.

Every step reads its state from the CallSession row, locked for the length of the step so that
two deliveries of the same webhook cannot both advance it.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from twilio.twiml.voice_response import VoiceResponse

from accounts.resolvers import ResolverUnavailable
from calls import twiml as say
from calls.models import CallSession, is_call_sid, is_four_digits
from securegather import languages
from securegather.models import AuditEvent
from securegather.webhooks import twilio_signed, twiml, twiml_on_error

Event, Outcome = AuditEvent.Event, AuditEvent.Outcome
CALL_STATUSES = {
    "queued",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
}


def _audit(
    request: HttpRequest, session: CallSession, event: str, outcome: str, **detail: object
) -> None:
    AuditEvent.record(
        event, outcome, request=request, call_sid=session.call_sid, caller=session.caller, **detail
    )


def _locked_session(request: HttpRequest) -> tuple[CallSession, bool]:
    """The call's session under a row lock, created (as a fresh start) if Twilio's is unknown."""
    sid = request.POST["CallSid"]
    session = CallSession.objects.select_for_update().filter(call_sid=sid).first()
    if session is not None:
        return session, False
    session, created = CallSession.objects.get_or_create(
        call_sid=sid,
        defaults={
            "account_sid": request.POST.get("AccountSid", "")[:34],
            "caller": request.POST.get("From", "")[:32],
        },
    )
    return session, created


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
        session.save()
        _audit(request, session, Event.RETRIES_EXHAUSTED, Outcome.FAILURE, prompt=prompt)
        return say.retries_exhausted()
    session.save()
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
    if not is_call_sid(request.POST.get("CallSid", "")):
        return HttpResponseBadRequest("Missing or malformed CallSid.")
    return None


@csrf_exempt
@require_POST
@sensitive_post_parameters("Digits")
@twiml_on_error
@twilio_signed
def incoming(request: HttpRequest) -> HttpResponse:
    """ "A call comes in": open the session and ask for the card's last 4 digits."""
    if bad := _require_call_sid(request):
        return bad
    with transaction.atomic():
        session, created = _locked_session(request)
        if created:
            _audit(request, session, Event.CALL_STARTED, Outcome.INFO)
            return twiml(say.opening())
        # Twilio redelivered the call's first webhook: answer with the prompt it is at.
        return twiml(_out_of_order(request, session, "incoming"))


@csrf_exempt
@require_POST
@sensitive_post_parameters("Digits")
@twiml_on_error
@twilio_signed
def card(request: HttpRequest) -> HttpResponse:
    """The card's last 4 digits: validate, seal at once, ask for the PIN."""
    if bad := _require_call_sid(request):
        return bad
    with transaction.atomic():
        session, created = _locked_session(request)
        if created or session.state != CallSession.State.AWAITING_CARD:
            return twiml(_out_of_order(request, session, "card"))
        digits = request.POST.get("Digits", "")
        if not is_four_digits(digits):
            return twiml(_reject_invalid(request, session, "card"))
        session.accept_card(digits)
        session.save()
        _audit(request, session, Event.CARD_ENTERED, Outcome.SUCCESS, key_id=session.card.key_id)
        return twiml(say.ask_pin())


@csrf_exempt
@require_POST
@sensitive_post_parameters("Digits")
@twiml_on_error
@twilio_signed
def pin(request: HttpRequest) -> HttpResponse:
    """The PIN: validate, seal, resolve the account, speak the result, wipe."""
    if bad := _require_call_sid(request):
        return bad
    with transaction.atomic():
        session, created = _locked_session(request)
        if created or session.state != CallSession.State.AWAITING_PIN:
            return twiml(_out_of_order(request, session, "pin"))
        digits = request.POST.get("Digits", "")
        if not is_four_digits(digits):
            return twiml(_reject_invalid(request, session, "pin"))
        session.accept_pin(digits)
        _audit(request, session, Event.PIN_ENTERED, Outcome.SUCCESS, key_id=session.pin.key_id)
        try:
            resolution = session.verify()
        except ResolverUnavailable:
            session.finish(CallSession.Outcome.RESOLVER_UNAVAILABLE)
            session.save()
            _audit(request, session, Event.RESOLVER_UNAVAILABLE, Outcome.FAILURE)
            return twiml(say.resolver_unavailable())
        if resolution is None:
            session.finish(CallSession.Outcome.NOT_FOUND)
            session.save()
            _audit(request, session, Event.NOT_FOUND, Outcome.FAILURE)
            return twiml(say.not_found())
        session.finish(CallSession.Outcome.VERIFIED, resolution.account_number)
        session.save()
        AuditEvent.record(
            Event.VERIFIED,
            Outcome.SUCCESS,
            request=request,
            call_sid=session.call_sid,
            caller=session.caller,
            account_number=resolution.account_number,
        )
        return twiml(say.found(resolution))


@csrf_exempt
@require_POST
@twiml_on_error
@twilio_signed
def language(request: HttpRequest) -> HttpResponse:
    """The opening menu's answer: 1 English, 2 Spanish, anything else the configured language."""
    if bad := _require_call_sid(request):
        return bad
    with transaction.atomic():
        session, created = _locked_session(request)
        if created or session.state != CallSession.State.AWAITING_CARD:
            return twiml(_out_of_order(request, session, "language"))
        session.language = languages.for_keypress(request.POST.get("Digits", ""))
        session.save()
        with translation.override(languages.django_language(session.language)):
            return twiml(say.ask_card())


@csrf_exempt
@require_POST
@twiml_on_error
@twilio_signed
def status(request: HttpRequest) -> HttpResponse:
    """Twilio's status callback: the call ended, so wipe whatever is still sealed."""
    if bad := _require_call_sid(request):
        return bad
    with transaction.atomic():
        session = (
            CallSession.objects.select_for_update().filter(call_sid=request.POST["CallSid"]).first()
        )
        if session is not None and session.ended_at is None:
            session.end()
            session.save()
            call_status = request.POST.get("CallStatus", "")
            _audit(
                request,
                session,
                Event.CALL_ENDED,
                Outcome.INFO,
                call_status=call_status if call_status in CALL_STATUSES else "other",
            )
    return twiml(VoiceResponse())
