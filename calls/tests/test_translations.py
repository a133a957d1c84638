"""Every prompt has a Spanish translation, and the compiled catalog says what the .po says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.conf import settings

from calls.checks import check_language, check_voices

SPANISH = Path(settings.BASE_DIR) / "locale/es/LC_MESSAGES"


def po_messages() -> dict[str, str]:
    with (SPANISH / "django.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po) if m.id}


def spoken_msgids() -> set[str]:
    """Every string the code marks for translation: gettext() is imported as _ throughout."""
    found = set()
    for app in ("calls", "securegather", "accounts", "legacy"):
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
            Path(settings.BASE_DIR) / app, method_map=[("**.py", "python")]
        ):
            found.add(message)
    return found


def test_every_msgid_has_a_spanish_msgstr():
    messages = po_messages()
    assert len(messages) >= 10
    assert [msgid for msgid, msgstr in messages.items() if not msgstr.strip()] == []


def test_every_prompt_in_the_code_is_in_the_catalog():
    assert spoken_msgids() - po_messages().keys() == set()


def test_placeholders_survive_translation():
    placeholder = re.compile(r"%\(\w+\)s")
    for msgid, msgstr in po_messages().items():
        assert sorted(placeholder.findall(msgid)) == sorted(placeholder.findall(msgstr)), msgid


def test_the_compiled_catalog_matches_the_po():
    """The .mo is built by `make` (pybabel compile); a stale one would speak old words."""
    with (SPANISH / "django.mo").open("rb") as mo:
        compiled = {m.id: m.string for m in read_mo(mo) if m.id}
    assert compiled == po_messages()


@pytest.mark.parametrize("language", ["en-US", "es-MX", "es-ES"])
def test_supported_languages_pass_the_check(settings, language):
    settings.SECUREGATHER_LANGUAGE = language
    assert check_language() == []


@pytest.mark.parametrize("language", ["fr-FR", "es", "es-mx", ""])
def test_a_language_without_prompts_is_e030(settings, language):
    settings.SECUREGATHER_LANGUAGE = language
    assert [e.id for e in check_language()] == ["securegather.E030"]


@pytest.mark.parametrize(
    "voices",
    [
        "",
        "es-MX=Polly.Andres",
        " es-ES = Polly.Lucia-Neural , en-US=Google.en-US-Standard-C",
        "es-ES=",
        "en-US=woman,",
    ],
)
def test_voices_of_twilios_forms_pass_the_check(settings, voices):
    settings.SECUREGATHER_VOICES = voices
    assert check_voices() == []


@pytest.mark.parametrize(
    ("voices", "entry"),
    [
        ("Polly.Mia", "Polly.Mia"),  # no language
        ("fr-FR=Polly.Celine", "fr-FR=Polly.Celine"),  # no prompts in French
        ("es-MX=Polly Mia", "es-MX=Polly Mia"),
        ("es-MX=Polly.Mia,es-ES=<Lucia>", "es-ES=<Lucia>"),
        ("es-mx=Polly.Mia", "es-mx=Polly.Mia"),  # Twilio's spelling, as SECUREGATHER_LANGUAGE
    ],
)
def test_a_voice_entry_twilio_would_refuse_is_e031_and_named(settings, voices, entry):
    settings.SECUREGATHER_VOICES = voices
    errors = check_voices()
    assert [e.id for e in errors] == ["securegather.E031"]
    assert repr(entry) in errors[0].msg
