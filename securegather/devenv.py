"""Print a development `.env`: fresh secret key, keyring entry and Twilio auth token.

`make run` writes it once, when there is no `.env`. For a real number, replace TWILIO_AUTH_TOKEN
with the Auth Token from the Twilio Console.
"""

import secrets

from keys.keyring import new_key_entry


def main() -> None:
    print("# Written by `make run` for local use. Never commit this file.")
    print(f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}")
    print(f"SECUREGATHER_KEYS={new_key_entry()}")
    print(f"TWILIO_AUTH_TOKEN={secrets.token_hex(16)}")
    print("# Local http: production's TLS defaults (redirect, HSTS, secure cookies) off.")
    print("DJANGO_SECURE_SSL_REDIRECT=false")
    print("DJANGO_SECURE_HSTS_SECONDS=0")
    print("DJANGO_SECURE_COOKIES=false")
    print("# One database role for everything (SQLite, or a local PostgreSQL superuser).")
    print("SECUREGATHER_DATABASE_ONE_ROLE=true")


if __name__ == "__main__":
    main()
