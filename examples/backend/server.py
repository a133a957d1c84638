"""An example backend for SecureGather's HTTP resolver, with the demo account in it.

    SECUREGATHER_BACKEND_SECRET=... python examples/backend/server.py --port 8800 \\
        --private-key backend-b1.pem [--private-key backend-b0.pem]

It answers POST /resolve through receiver.Receiver, and checks the digits against one demo
account: card 1234, PIN 4321 → AC12345678, balance 12.55. Standard library and cryptography only;
replace ``check`` with a lookup in your own system. Each private key file is a PEM written by
``manage.py backend_keypair``; its key id is the file's name up to ``.pem`` after "backend-",
or given as ``--private-key KID=FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import logging
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from receiver import Answer, Receiver, found, load_private_key, not_found

logger = logging.getLogger("backend")
# The demo account: card last 4 → (PIN, account, balance, opaque reference). The reference is
# what SecureGather counts a wrong PIN on: stable, and saying nothing of the card or account.
DEMO = {"1234": ("4321", "AC12345678", "12.55", "acct_5f0c9e2a41d7")}
# A request body larger than this is no request of SecureGather's.
MAX_BODY = 16 * 1024


def check(card_last4: str, pin: str, caller: str) -> Answer:
    """The company's function: look the account up where it lives."""
    entry = DEMO.get(card_last4)
    if entry is None:
        # Compared anyway, so an unknown card costs what a wrong PIN does.
        hmac.compare_digest(pin, "0000")
        return not_found()
    expected_pin, account, balance, reference = entry
    if not hmac.compare_digest(pin, expected_pin):
        return not_found(reference)
    return found(account, balance, reference)


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != "/resolve" or not 0 < length <= MAX_BODY:
                self._send(404 if self.path != "/resolve" else 400, {"error": "bad request"})
                return
            status, answer = receiver.handle(dict(self.headers.items()), self.rfile.read(length))
            if status != 200:
                logger.warning("refused: %s", answer.get("error"))
            self._send(status, answer)

        def _send(self, status: int, answer: Answer) -> None:
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # The request line only (method, path, status): never a body.
            logger.info("%s %s", self.address_string(), format % args)

    return Handler


def key_id(option: str) -> tuple[str, Path]:
    kid, equals, path = option.partition("=")
    if equals:
        return kid, Path(path)
    name = Path(option).name.removesuffix(".pem")
    return name.removeprefix("backend-"), Path(option)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument(
        "--private-key", action="append", required=True, help="KID=FILE or backend-KID.pem"
    )
    args = parser.parse_args(argv)
    secret = os.environ.get("SECUREGATHER_BACKEND_SECRET", "")
    if len(secret) < 32:
        print("SECUREGATHER_BACKEND_SECRET must hold at least 32 characters.", file=sys.stderr)
        return 1
    keys = {}
    for option in args.private_key:
        kid, path = key_id(option)
        keys[kid] = load_private_key(path.read_bytes())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    receiver = Receiver(secret=secret.encode(), private_keys=keys, check=check)
    server = ThreadingHTTPServer((args.host, args.port), handler_for(receiver))
    logger.info(
        "example backend on http://%s:%d/resolve, keys %s",
        args.host,
        server.server_address[1],
        ", ".join(sorted(keys)),
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
