"""A new keyring entry, made with no setting at all: a new host needs its first key before its
settings exist. `manage.py generate_key` runs :func:`main` when the settings cannot load, and
``python -m keys.generate`` runs it anywhere the project is."""

from __future__ import annotations

import argparse
import sys

from keys.keyring import KeyringError, new_key_entry


def main(argv: list[str] | None = None) -> int:
    """Print ``kid:64-hex-chars``; the exit status for the shell."""
    parser = argparse.ArgumentParser(
        prog="manage.py generate_key",
        description="Print a new keyring entry 'kid:64-hex-chars' from the OS's random source.",
    )
    parser.add_argument("--id", dest="kid", help="key id (default: k<date><random>)")
    args = parser.parse_args(argv)
    try:
        print(new_key_entry(args.kid))
    except KeyringError as exc:
        # As Django prints a command's error: one line on stderr, exit status 1.
        print(f"CommandError: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
