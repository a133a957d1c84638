"""Signals the audit log sends for what it does not do itself."""

from django.dispatch import Signal

# Rows were appended to the chain, in the transaction still open: ``last_id`` is the newest row's
# id and ``head_mac`` its MAC. Signed checkpoints are written from it (audit.receivers).
rows_appended = Signal()

# An audit row could not be appended, and was lost: the database refused it or did not answer.
# Sent where the service knows it (a failed step's own row); monitoring counts it.
append_failed = Signal()
