import pytest

from audit.models import AuditEvent
from calls.models import CallSession
from conftest import gather, hangs_up, parse, spoken

pytestmark = pytest.mark.django_db


def test_card_digits_are_sealed_and_the_pin_is_asked(call, plaintext):
    call.start()
    response = call.card("8264")
    assert gather(response).get("action") == "/voice/pin/"
    assert "4 digit identification number" in spoken(response)
    session = CallSession.objects.get()
    assert session.state == "awaiting_pin"
    assert session.unseal("card") == "8264"
    event = AuditEvent.objects.get(event="card_entered")
    assert event.key_id == "test2"
    plaintext.assert_absent("8264")


@pytest.mark.parametrize(
    "digits",
    [
        None,
        "",
        "826",
        "82645",
        "826a",
        "82#4",
        "*826",
        "８２６４",
        "١٢٣٤",
        "8 64",
        " 8264",
        "826400000000",
    ],
)
def test_anything_but_four_ascii_digits_reprompts(call, plaintext, digits):
    call.start()
    response = call.card(digits)
    assert "not 4 digits" in spoken(response)
    assert gather(response).get("action") == "/voice/card/"
    session = CallSession.objects.get()
    assert (session.state, session.tries, session.card) == ("awaiting_card", 1, None)
    assert AuditEvent.objects.filter(event="invalid_input").count() == 1
    if digits:
        assert digits not in str(AuditEvent.objects.values_list("detail", flat=True)[0])
    plaintext.assert_absent("8264", "826", "82645")


def test_third_invalid_entry_says_goodbye(call):
    call.start()
    call.card("1")
    call.card("")
    response = call.card("12345")
    assert hangs_up(response) and gather(response) is None
    assert "Goodbye" in spoken(response)
    session = CallSession.objects.get()
    assert (session.state, session.outcome) == ("finished", "retries_exhausted")
    assert AuditEvent.objects.filter(event="retries_exhausted").count() == 1


def test_a_valid_entry_after_a_bad_one_goes_on(call):
    call.start()
    call.card("12")
    assert gather(call.card("8264")).get("action") == "/voice/pin/"
    assert CallSession.objects.get().tries == 0


def test_card_for_an_unknown_call_restarts_cleanly(call):
    response = call.card("8264")
    assert gather(response).get("action") == "/voice/card/"
    session = CallSession.objects.get()
    assert (session.state, session.card) == ("awaiting_card", None)
    assert AuditEvent.objects.filter(event="out_of_order").count() == 1


def test_card_again_while_awaiting_the_pin_keeps_the_first(call):
    call.start()
    call.card("8264")
    first = CallSession.objects.get().card
    response = call.card("5937")
    assert gather(response).get("action") == "/voice/pin/"
    assert CallSession.objects.get().card == first


def test_card_after_the_call_finished_says_goodbye(call, demo_account):
    call.start()
    call.card("1234")
    call.pin("4321")
    response = call.card("1234")
    assert hangs_up(response) and "already been handled" in spoken(response)


@pytest.mark.parametrize("step", ["card", "pin"])
def test_the_retry_notice_is_spoken_inside_the_gather(call, demo_account, step):
    # Twilio takes keypad input only while a <Gather> runs: a <Say> nested in it can be
    # interrupted by the digits, one before it cannot, and presses during it are lost.
    call.start()
    if step == "pin":
        call.card("1234")
    response = getattr(call, step)("12")
    root = parse(response)
    assert [child.tag for child in root] == ["Gather"]
    assert [say.text for say in root.find("Gather").iter("Say")] == [
        "Sorry, that was not 4 digits.",
        "Please enter last 4 digits of your payment card number."
        if step == "card"
        else "Please enter your unique 4 digit identification number",
    ]
