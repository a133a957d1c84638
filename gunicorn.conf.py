"""gunicorn settings: `gunicorn -c gunicorn.conf.py securegather.wsgi`."""

import gc
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Steps are short and mostly wait on the database: two workers a core, at most 8 a host.
workers = int(os.environ.get("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2 + 1, 8)))
# Twilio waits 15 s for a webhook; a worker stuck far shorter than that is restarted.
timeout = 10
graceful_timeout = 10
accesslog = "-"
# Path only (%(U)s), never the query string, and never a body: nothing a caller typed.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
# No control socket: nothing here uses gunicornc, and its default path (~/.gunicorn/gunicorn.ctl)
# is one per user, so a second gunicorn (a benchmark beside `make run`) would take it over.
control_socket_disable = True


def post_worker_init(worker: object) -> None:
    # The application is loaded, and lives as long as the worker: frozen, its objects are left
    # out of the cyclic collector's passes, which otherwise walk all of them at every full one.
    gc.freeze()
