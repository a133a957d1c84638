"""WSGI entry point: `gunicorn securegather.wsgi`. A misconfigured server does not start."""

import os

from django.core.wsgi import get_wsgi_application

from keys.keyring import get_keyring
from securegather.checks import check_before_serving

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "securegather.settings")

application = get_wsgi_application()

check_before_serving()

# The keyring the checks just passed is the one this worker serves with, until it stops: read
# now, not at its first call. An edit of the keys file reaches the workers a reload starts
# (`manage.py reload_service`), never the running ones halfway.
get_keyring()
