"""Start an example backend in a subprocess, for the tests and the benchmarks: the Python one
(server.py) or the Node.js one (../backend-node/server.mjs), which log alike when they listen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "server.py"
NODE_SERVER = Path(__file__).resolve().parent.parent / "backend-node" / "server.mjs"


def start(
    private_keys: list[Path], secret: str, *, node: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """The example backend on a port the OS picks, with these private key files: its process
    and, once it listens (it logs the URL when it does), its URL."""
    program = ["node", str(NODE_SERVER)] if node else [sys.executable, str(SERVER)]
    process = subprocess.Popen(  # noqa: S603
        [
            *program,
            "--port",
            "0",
            *[arg for key in private_keys for arg in ("--private-key", str(key))],
        ],
        env={**os.environ, "SECUREGATHER_BACKEND_SECRET": secret},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if found := re.search(r"(http://\S+/resolve)", line):
            # Its log goes on being read, so a full pipe never blocks it.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, found[1]
    raise RuntimeError(f"the example backend did not start (exit status {process.wait()})")
