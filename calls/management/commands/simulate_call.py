"""Play a whole call, signed as Twilio signs, and print what the caller would hear."""

from __future__ import annotations

import getpass
import ipaddress
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as ET
from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.test import Client
from django.utils import translation
from twilio.request_validator import RequestValidator

from calls.languages import SAY_LANGUAGES, django_language
from calls.webhooks import apology
from keys.commands import DatabaseCommand

# A webhook answer is final after a handful of steps; a loop longer than this is a bug.
MAX_REQUESTS = 20

Post = Callable[[str, dict[str, str]], tuple[int, str]]


def http_transport(validator: RequestValidator) -> Post:
    def post(url: str, params: dict[str, str]) -> tuple[int, str]:
        # The scheme is checked in handle(): http or https only.
        request = urllib.request.Request(  # noqa: S310
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={
                "X-Twilio-Signature": validator.compute_signature(url, params),
                "User-Agent": "SecureGather simulate_call",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except urllib.error.URLError as exc:
            # `make run`'s server, if it is this machine's; otherwise the reason says enough.
            hint = " Is `make run` running?" if _is_this_machine(url) else ""
            raise CommandError(f"Cannot reach {url} ({exc.reason}).{hint}") from None

    return post


def _is_this_machine(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address
        return host == "localhost"


def in_process_transport(validator: RequestValidator) -> Post:
    public = settings.SECUREGATHER_PUBLIC_URL.rstrip("/")
    # The public host is one ALLOWED_HOSTS accepts on a production host; localhost elsewhere.
    client = Client(
        HTTP_HOST=urllib.parse.urlsplit(public).netloc or "localhost", enforce_csrf_checks=True
    )
    # Under production settings plain http is redirected: post as if through the TLS proxy.
    secure = settings.SECURE_SSL_REDIRECT
    origin = public or ("https" if secure else "http") + "://localhost"

    def post(url: str, params: dict[str, str]) -> tuple[int, str]:
        path = urllib.parse.urlsplit(url).path
        signature = validator.compute_signature(origin + path, params)
        response = client.post(path, params, secure=secure, HTTP_X_TWILIO_SIGNATURE=signature)
        return response.status_code, response.content.decode()

    return post


def _scheme(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).scheme
    except ValueError:  # an unclosed IPv6 bracket, say
        return ""


def apologies() -> set[str]:
    """What a step that failed says, in each language a server may speak."""
    spoken: set[str] = set()
    for language in SAY_LANGUAGES:
        with translation.override(django_language(language)):
            spoken.update(say.text or "" for say in ET.fromstring(str(apology())).iter("Say"))
    return spoken


def parse_twiml(body: str) -> Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        raise CommandError(f"The answer is not TwiML: {body[:200]!r}") from None


class Call:
    """One simulated call: posts Twilio's parameters and follows the TwiML it gets back."""

    def __init__(
        self,
        post: Post,
        base_url: str,
        caller: str,
        account_sid: str,
        keypresses: list[str],
        write: Callable[[str], None],
        menu: str = "",
    ) -> None:
        self.post, self.base_url, self.write = post, base_url, write
        self.keypresses = deque(keypresses)
        self.menu = menu
        self.heard: list[str] = []
        # The prompt last answered, and the one the server asked for again after an answer.
        self.answered = ""
        self.refused = ""
        self.params = {
            "CallSid": "CA" + secrets.token_hex(16),
            "AccountSid": account_sid,
            "From": caller,
            "To": "+15005550001",
            "Direction": "inbound",
            "CallStatus": "in-progress",
            "ApiVersion": "2010-04-01",
        }

    def request(self, url: str, extra: dict[str, str] | None = None) -> str:
        status, body = self.post(url, {**self.params, **(extra or {})})
        if status != 200:
            raise CommandError(
                f"POST {urllib.parse.urlsplit(url).path} answered {status}: {body[:200]}"
            )
        return body

    def play(self) -> None:
        url = urllib.parse.urljoin(self.base_url, "/voice/")
        body = self.request(url)
        for _ in range(MAX_REQUESTS):
            following = self.follow(parse_twiml(body), url)
            if following is None:
                break
            url, extra = following
            body = self.request(url, extra)
        else:
            raise CommandError(f"The call did not end within {MAX_REQUESTS} requests.")
        self.request(
            urllib.parse.urljoin(self.base_url, "/voice/status/"), {"CallStatus": "completed"}
        )
        self.write("(call ended)")
        if self.refused:
            raise CommandError(
                f"The server refused the entry at {self.refused} and asked for it again: the "
                "simulation stopped there rather than press the next value into that prompt. "
                "Card and PIN are exactly 4 digits 0-9."
            )
        if apologies().intersection(self.heard):
            raise CommandError(
                "The server apologised: a step failed there. Its log says which, and so does "
                "the audit log's step_failed row when its database could take one "
                "(`manage.py check --database default` on the server says if it cannot)."
            )

    def hear(self, text: str | None) -> None:
        self.heard.append(text or "")
        self.write(f"Caller hears: {text}")

    def follow(self, response: Element, url: str) -> tuple[str, dict[str, str]] | None:
        """Act out one TwiML document; return the next request to make, or None at hang-up."""
        for verb in response:
            if verb.tag == "Say":
                self.hear(verb.text)
            elif verb.tag == "Gather":
                for say in verb.iter("Say"):
                    self.hear(say.text)
                action = urllib.parse.urljoin(url, verb.get("action", url))
                if action == self.answered:
                    # A re-prompt: pressing the next value would type the PIN at the card prompt.
                    self.refused = urllib.parse.urlsplit(action).path
                    return None
                self.answered = action
                if verb.get("numDigits") == "1":  # the language menu, not a card or PIN
                    digits = self.menu
                else:
                    digits = self.keypresses.popleft() if self.keypresses else ""
                self.write(f"Caller presses: {'*' * len(digits) or '(nothing)'}")
                return action, {"Digits": digits}
            elif verb.tag == "Redirect":
                return urllib.parse.urljoin(url, verb.text or url), {}
            elif verb.tag == "Hangup":
                return None
        return None


class Command(DatabaseCommand):
    help = "Simulate a caller: signed requests, keypad entries, and what the caller would hear."
    # In-process, a step that fails on a missing table is answered with the apology callers
    # hear, and the failure's audit row cannot be written either: ask the database first.
    check_migrations_first = True

    def add_arguments(self, parser: CommandParser) -> None:
        # On the command line only for made-up digits (the demo's): argv shows in `ps` and shell
        # history. Left out, each is asked for without echo.
        parser.add_argument("--card", help="the card's last 4 digits to press (default: asked)")
        parser.add_argument("--pin", help="the PIN to press (default: asked)")
        parser.add_argument(
            "--from",
            dest="caller",
            default="+15005550006",
            help="the caller's number (default +15005550006)",
        )
        parser.add_argument(
            "--menu",
            default="",
            help="what to press at the language menu (SECUREGATHER_OFFER_LANGUAGES): 1 or 2",
        )
        parser.add_argument(
            "--url",
            help="a running server, e.g. http://127.0.0.1:8000 "
            "(default: in-process, on this settings' database)",
        )

    def needs_database(self, **options: Any) -> bool:
        return not options.get("url")  # against a server, the server's database

    def execute(self, *args: Any, **options: Any) -> Any:
        # In-process, the call runs on this host's settings, checked first as for any command.
        # Against a server (--url), only the auth token signs here: the keyring and the rest are
        # the server's, so a workstation needs none of them.
        if options.get("url"):
            options["skip_checks"] = True
        return super().execute(*args, **options)

    def handle(
        self,
        *args: Any,
        card: str | None,
        pin: str | None,
        caller: str,
        url: str | None,
        menu: str,
        **options: Any,
    ) -> None:
        if not settings.TWILIO_AUTH_TOKEN:
            raise CommandError("TWILIO_AUTH_TOKEN is not set; it signs the simulated requests.")
        validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
        if url and _scheme(url) not in {"http", "https"}:
            raise CommandError("--url takes an http:// or https:// address.")
        if url:
            post, base = http_transport(validator), url.rstrip("/") + "/"
        else:
            post, base = in_process_transport(validator), "http://localhost/"
        if card is None:
            card = getpass.getpass("Card last 4 to press (not shown): ")
        if pin is None:
            pin = getpass.getpass("PIN to press (not shown): ")
        account_sid = settings.TWILIO_ACCOUNT_SID or "AC" + secrets.token_hex(16)
        Call(post, base, caller, account_sid, [card, pin], self.stdout.write, menu).play()
