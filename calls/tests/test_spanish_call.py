"""A call with SECUREGATHER_LANGUAGE=es-MX (or es-ES) is spoken in Spanish, every <Say> of it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

from calls.management.commands import simulate_call
from conftest import gather, parse, spoken

pytestmark = pytest.mark.django_db

ASK_CARD = "Por favor, ingrese los últimos 4 dígitos del número de su tarjeta de pago."
ASK_PIN = "Por favor, ingrese su número de identificación único de 4 dígitos"
FOUND = "Gracias. Su número de cuenta es AC12345678 y su saldo es 12.55"
NOT_FOUND = "No pudimos encontrarlo en nuestro sistema. Adiós."


def say_languages(response) -> set[str | None]:
    return {say.get("language") for say in parse(response).iter("Say")}


def voices(response) -> set[str | None]:
    return {say.get("voice") for say in parse(response).iter("Say")}


@override_settings(SECUREGATHER_LANGUAGE="es-MX")
def test_the_whole_call_is_spanish_with_es_mx_voices(call, demo_account, plaintext):
    responses = [call.start(), call.card("1234"), call.pin("4321")]
    assert [spoken(r) for r in responses] == [ASK_CARD, ASK_PIN, FOUND]
    assert all(say_languages(r) == {"es-MX"} for r in responses)
    # Twilio's default voice speaks no es-MX: each <Say> names a voice that does.
    assert all(voices(r) == {"Polly.Mia"} for r in responses)
    assert translation.get_language() == "en-us"  # the call's language ends with its request
    plaintext.assert_absent("1234", "4321")


@override_settings(SECUREGATHER_LANGUAGE="es-ES")
def test_es_es_speaks_the_same_words_with_a_castilian_voice(call, demo_account):
    responses = [call.start(), call.card("1234"), call.pin("0000")]
    assert [spoken(r) for r in responses] == [ASK_CARD, ASK_PIN, NOT_FOUND]
    assert all(say_languages(r) == {"es-ES"} for r in responses)
    assert all(voices(r) == {"Polly.Lucia"} for r in responses)


@override_settings(
    SECUREGATHER_LANGUAGE="es-MX", SECUREGATHER_VOICES="es-MX=Polly.Andres, en-US=Polly.Joanna"
)
def test_configured_voices_replace_the_defaults(call, demo_account):
    assert voices(call.start()) == {"Polly.Andres"}
    with override_settings(SECUREGATHER_LANGUAGE="en-US"):
        assert voices(call.start()) == {"Polly.Joanna"}


@override_settings(SECUREGATHER_LANGUAGE="es-ES", SECUREGATHER_VOICES="es-ES=")
def test_an_empty_voice_leaves_the_language_to_the_accounts_voice(call, demo_account):
    response = call.start()
    assert say_languages(response) == {"es-ES"}
    assert voices(response) == {None}


@override_settings(SECUREGATHER_LANGUAGE="es-MX", SECUREGATHER_MAX_TRIES=2)
def test_reprompts_and_goodbyes_are_spanish_too(call, demo_account):
    call.start()
    retry = call.card("12")
    assert spoken(retry) == "Lo sentimos, eso no fueron 4 dígitos. " + ASK_CARD
    goodbye = call.card("")
    assert spoken(goodbye).startswith("Lo sentimos, no pudimos leer lo que marcó.")
    assert say_languages(retry) == say_languages(goodbye) == {"es-MX"}


@override_settings(SECUREGATHER_LANGUAGE="es-MX")
def test_the_apology_for_a_failed_step_is_spanish(call, demo_account, monkeypatch):
    def broken(self):
        raise RuntimeError("database went away")

    monkeypatch.setattr("calls.models.CallSession.verify", broken)
    call.start()
    call.card("1234")
    response = call.pin("4321")
    assert spoken(response).startswith("Lo sentimos, no podemos tomar sus datos")
    assert say_languages(response) == {"es-MX"}
    assert voices(response) == {"Polly.Mia"}


def test_english_stays_the_default(call, demo_account):
    response = call.start()
    assert spoken(response) == "Please enter last 4 digits of your payment card number."
    assert say_languages(response) == {"en-US"}
    assert voices(response) == {None}  # the account's default voice, as the tutorial had it
    assert gather(response).get("numDigits") == "4"


@override_settings(SECUREGATHER_LANGUAGE="es-MX")
def test_simulate_call_hears_spanish_in_every_say(demo_account, capsys, monkeypatch):
    answers: list[str] = []
    transport = simulate_call.in_process_transport

    def recording(validator):
        post = transport(validator)

        def recorded(url, params):
            status, body = post(url, params)
            answers.append(body)
            return status, body

        return recorded

    monkeypatch.setattr(simulate_call, "in_process_transport", recording)
    call_command("simulate_call", "--card", "1234", "--pin", "4321")
    out = capsys.readouterr().out
    assert f"Caller hears: {ASK_CARD}" in out
    assert f"Caller hears: {ASK_PIN}" in out
    assert f"Caller hears: {FOUND}" in out
    says = [say for body in answers for say in ET.fromstring(body).iter("Say")]
    assert len(says) == 3
    assert {say.get("language") for say in says} == {"es-MX"}


def test_admin_pages_keep_djangos_language(admin_client, settings):
    settings.SECUREGATHER_LANGUAGE = "es-MX"
    assert "Site administration" in admin_client.get("/admin/").content.decode()
