"""Signals the keys app sends for the layers above it to record."""

from django.dispatch import Signal

# rotate_keys ran: ``primary`` is the key id values were moved to, ``result`` a
# keys.rotation.Result. The audit log records it (audit.receivers).
keys_rotated = Signal()
