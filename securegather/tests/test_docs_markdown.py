"""The pages under docs/, README.md and bench/README.md render as written: each code fence is a
line of its own (a fence with text after it closes nothing, and the rest of the page renders as
code), and every fence opened is closed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
PAGES = sorted(
    [*BASE_DIR.glob("docs/*.md"), BASE_DIR / "README.md", BASE_DIR / "bench" / "README.md"]
)
# An opening fence may name its language ("```sh"); a closing one is the fence alone.
FENCE = re.compile(r"^\s*```")
OPENING = re.compile(r"^\s*```[\w+-]*$")
CLOSING = re.compile(r"^\s*```$")


def fence_problems(text: str) -> list[str]:
    problems, inside = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if not FENCE.match(line):
            continue
        if inside and not CLOSING.match(line):
            problems.append(f"line {number}: a closing fence with text after it: {line.strip()!r}")
        elif not inside and not OPENING.match(line):
            problems.append(f"line {number}: an opening fence with more than a language: {line!r}")
        inside = not inside
    if inside:
        problems.append("a code fence opened and never closed")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(BASE_DIR)))
def test_every_code_fence_is_a_line_of_its_own_and_closed(page):
    assert fence_problems(page.read_text()) == []


def test_a_fence_with_text_after_it_or_left_open_is_found():
    assert fence_problems("```sh\nls\n``` text\n") == [
        "line 3: a closing fence with text after it: '``` text'"
    ]
    assert fence_problems("```sh\nls\n\nmore words\n") == ["a code fence opened and never closed"]
