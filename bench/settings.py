"""Settings for benchmark servers: the project's, plus a baseline route (bench.urls)."""

from securegather.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
