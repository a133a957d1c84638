"""The figures each process measures itself: step latency and audit rows lost.

gunicorn serves with several worker processes, and a scrape reaches one of them. With
PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it for the server it starts), each process
writes its figures to a file of its own there and a scrape sums the files of every worker,
living or gone, as prometheus-client's multiprocess mode does; without it (one process: a test,
`runserver`), a scrape reads this process's own. No label holds a process id: the figures are
the service's, whichever worker served.

Everything the database holds (calls, lockouts, refusals, seals) is read from it at scrape time
instead (monitoring.collectors): the same for every worker, and kept across restarts.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

# A step answers in a few milliseconds, and Twilio waits 15 s before it gives up on one.
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)

# Registered in no registry of their own: the view puts them in each scrape's.
STEP_SECONDS = Histogram(
    "securegather_step_seconds",
    "Time to answer a call's webhook step, by step.",
    ["step"],
    buckets=STEP_BUCKETS,
    registry=None,
)
# Labelled, though with one value, so that a process creates its file in the multiprocess
# directory only when it first counts, not as it imports this module: a management command run
# with the variable set (and no such directory) measures nothing and must not fail.
AUDIT_APPEND_FAILURES = Counter(
    "securegather_audit_append_failures",
    "Audit rows the service could not append: the row of a failed step was lost too.",
    ["where"],
    registry=None,
)
CALL_STEP = "call_step"
PROCESS_METRICS = (STEP_SECONDS, AUDIT_APPEND_FAILURES)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def add_process_metrics(registry: CollectorRegistry) -> None:
    """Every worker's figures (multiprocess mode), or this process's."""
    AUDIT_APPEND_FAILURES.labels(where=CALL_STEP)  # at 0 until one is counted
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        for metric in PROCESS_METRICS:
            registry.register(metric)
