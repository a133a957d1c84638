"""WSGI entry point for benchmark servers (bench.settings)."""

import os

from django.core.wsgi import get_wsgi_application

from securegather.checks import check_before_serving

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

application = get_wsgi_application()

check_before_serving()
