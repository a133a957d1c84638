"""Settings for benchmark servers: the project's, plus the baseline and floor routes (bench.urls)
and the floor views' tables (bench.models)."""

from securegather.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405
