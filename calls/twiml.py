"""What the caller hears: each answer of the call flow as a VoiceResponse.

Prompts follow Twilio's tutorial word for word where it has them, so its users hear the same call.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from twilio.twiml.voice_response import Gather, VoiceResponse

from accounts.resolvers import Resolution
from calls.languages import ENGLISH, django_language, say_attributes, spanish


def _say(response: VoiceResponse | Gather, text: str) -> None:
    # The words and the voice follow the active translation: the call's language in a webhook.
    response.say(text, **say_attributes())


def _gather(action: str, prompt: str, notice: str = "") -> VoiceResponse:
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=4,
        timeout=10,
        method="POST",
        action=reverse(action),
        # A timeout posts back without Digits, so silence counts as a try and is re-prompted.
        action_on_empty_result=True,
    )
    # Inside the Gather, the notice too: Twilio takes keypad input only while a <Gather> runs,
    # so digits a caller types during a <Say> before it would be lost to the next try.
    if notice:
        _say(gather, notice)
    _say(gather, prompt)
    return response


def offer_languages() -> VoiceResponse:
    """ "For English press 1, para español oprima 2": each half spoken in its own language."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        # Silence is an answer too: the call goes on in SECUREGATHER_LANGUAGE.
        timeout=5,
        method="POST",
        action=reverse("calls:language"),
        action_on_empty_result=True,
    )
    with translation.override(django_language(ENGLISH)):
        _say(gather, _("For English, press 1."))
    with translation.override(django_language(spanish())):
        _say(gather, _("For Spanish, press 2."))
    return response


def opening() -> VoiceResponse:
    """The first answer of a call: the language menu when it is offered, else the card prompt."""
    return offer_languages() if settings.SECUREGATHER_OFFER_LANGUAGES else ask_card()


def ask_card(retry: bool = False) -> VoiceResponse:
    return _gather(
        "calls:card",
        _("Please enter last 4 digits of your payment card number."),
        _("Sorry, that was not 4 digits.") if retry else "",
    )


def ask_pin(retry: bool = False) -> VoiceResponse:
    return _gather(
        "calls:pin",
        _("Please enter your unique 4 digit identification number"),
        _("Sorry, that was not 4 digits.") if retry else "",
    )


def _goodbye(text: str) -> VoiceResponse:
    response = VoiceResponse()
    _say(response, text)
    response.hangup()
    return response


def found(resolution: Resolution) -> VoiceResponse:
    return _goodbye(
        _("Thank you. Your account number is %(account)s and your balance is %(balance)s")
        % {"account": resolution.account_number, "balance": resolution.balance}
    )


def not_found() -> VoiceResponse:
    return _goodbye(_("We were not able to locate you in our system. Goodbye."))


def retries_exhausted() -> VoiceResponse:
    return _goodbye(_("Sorry, we could not read your entry. Please call again. Goodbye."))


def resolver_unavailable() -> VoiceResponse:
    return _goodbye(_("Sorry, we cannot check your details right now. Please try later. Goodbye."))


def call_finished() -> VoiceResponse:
    return _goodbye(_("This call has already been handled. Goodbye."))


def locked() -> VoiceResponse:
    return _goodbye(_("Sorry, there have been too many attempts. Please try again later. Goodbye."))


def session_expired() -> VoiceResponse:
    return _goodbye(_("Sorry, this call has timed out. Please call again. Goodbye."))
