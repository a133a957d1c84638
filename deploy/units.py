"""The commands the systemd units in deploy/systemd run, for running them by hand: on a host
without systemd, and in the tests, from a checkout elsewhere than /srv/securegather."""

from __future__ import annotations

import shlex
from pathlib import Path

UNITS = Path(__file__).resolve().parent / "systemd"
CHECKOUT = "/srv/securegather"


def unit_lines(name: str, key: str) -> list[str]:
    """The values of every ``key=`` line of the unit ``name``."""
    prefix = f"{key}="
    text = (UNITS / name).read_text()
    return [line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix)]


def exec_start(name: str, checkout: Path) -> tuple[list[str], dict[str, str], Path]:
    """The unit's ExecStart as argv, its Environment= pairs and its working directory, with the
    checkout at ``checkout``."""
    (command,) = unit_lines(name, "ExecStart")
    argv = [word.replace(CHECKOUT, str(checkout)) for word in shlex.split(command)]
    environment = dict(
        pair.split("=", 1) for line in unit_lines(name, "Environment") for pair in shlex.split(line)
    )
    (directory,) = unit_lines(name, "WorkingDirectory")
    return argv, environment, Path(directory.replace(CHECKOUT, str(checkout)))


def rendered(name: str, checkout: Path) -> str:
    """The unit's text with the checkout at ``checkout``, for systemd-analyze verify."""
    return (UNITS / name).read_text().replace(CHECKOUT, str(checkout))
