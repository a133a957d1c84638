"""Tables for the floor views of bench.urls: the least a step that writes its audit row must do.

They exist only in benchmark databases (bench.settings installs this app).
"""

from django.db import models


class FloorHead(models.Model):
    """A chain's head: the one row every append locks, as audit.AuditChainHead."""

    ID = 1
    mac = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"head {self.mac}"


class FloorCall(models.Model):
    """A call's state, one row per call as calls.CallSession: a step writes it under its lock."""

    call_sid = models.CharField(max_length=34, unique=True)
    state = models.CharField(max_length=16)

    def __str__(self) -> str:
        return self.call_sid


class FloorRow(models.Model):
    """An appended row, indexed as an audit row is looked up: by call and by time."""

    created_at = models.DateTimeField(db_index=True)
    call_sid = models.CharField(max_length=64, db_index=True)
    mac = models.CharField(max_length=100)

    def __str__(self) -> str:
        return f"row {self.pk} of {self.call_sid}"
