from typing import Any

from django.core.management.base import CommandError

from audit import checkpoints
from audit.checkpoints import CheckpointError
from keys.commands import DatabaseCommand


class Command(DatabaseCommand):
    help = (
        "Sign a checkpoint of the audit log's newest row and write it to the configured sinks "
        "(SECUREGATHER_CHECKPOINT_FILE, SECUREGATHER_CHECKPOINT_SYSLOG). Run it from a timer "
        "every 5 minutes: it writes none when no row came since the last one."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checkpoint = checkpoints.write_newest()
        except CheckpointError as exc:
            raise CommandError(f"No checkpoint written: {exc}.") from None
        if checkpoint is None:
            self.stdout.write("No new audit rows since the last checkpoint: none written.")
            return
        self.stdout.write(
            f"Checkpoint written at row {checkpoint.last_id} ({checkpoint.count} rows, "
            f"{checkpoint.time}, {checkpoint.host})."
        )
