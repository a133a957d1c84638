from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.utils import timezone

from keys.commands import DatabaseCommand
from keys.keyring import Keyring, KeyringError, get_keyring
from keys.models import KeyRecord
from keys.rotation import NO_KEY, columns, cryptoperiod_exceeded


class Command(DatabaseCommand):
    help = (
        "Show each key (role, first use, seals) and, for every sealed and digest column, how "
        "many values sit under each key id, flagging ids the ring cannot use. Exits 1 when the "
        "ring is unusable, a key's bytes changed or values sit under keys the ring cannot use."
    )
    # It explains what the database checks report, so they must not stop it.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            ring = get_keyring()
        except KeyringError as exc:
            raise CommandError(f"The keyring is unusable: {exc}.") from None
        self.stdout.write(f"Resolver: {settings.SECUREGATHER_RESOLVER}")
        changed = self.keys(ring)
        lacking = self.columns(ring)
        self.backend_columns()
        self.verdict(ring, lacking)
        # The lines above say what is wrong; the exit status tells monitoring and runbooks.
        # Warnings (a cryptoperiod passed) leave it 0: every value still opens.
        if changed:
            raise CommandError(
                f"Key id(s) {', '.join(changed)} hold other bytes than when first used "
                "(securegather.E007): put the original bytes back under each id."
            )
        if lacking:
            raise CommandError(
                "Values sit under key ids the ring cannot use (securegather.E008): see above."
            )

    def keys(self, ring: Keyring) -> list[str]:
        """Print each key; return the ids whose bytes changed."""
        every = ring.every_key
        changed = set(KeyRecord.changed(every))
        records = {r.kid: r for r in KeyRecord.objects.filter(kid__in=[k.kid for k in every])}
        now = timezone.now()
        self.stdout.write("Keys (seals are approximate: processes add theirs every 1,024):")
        for key in every:
            role = "primary" if key is ring.primary else "retired" if key.retired else "active"
            record = records.get(key.kid)
            if record is None:
                used = "never used"
            else:
                seals = record.sealed_count + (ring.unrecorded_seals if key is ring.primary else 0)
                used = f"first used {record.first_seen:%Y-%m-%d} "
                used += f"({(now - record.first_seen).days} days ago), {seals} seals"
            flag = "  BYTES CHANGED (E007)" if key.kid in changed else ""
            self.stdout.write(f"  {key.kid:<20} {role:<8} {used}{flag}")
        return sorted(changed)

    def columns(self, ring: Keyring) -> int:
        lacking = 0
        for kind, title in (("sealed", "Sealed columns"), ("digest", "Keyed digest columns")):
            self.stdout.write(f"{title} (values per key id):")
            for column in [c for c in columns() if c.kind == kind]:
                parts = []
                for kid, n in sorted(column.counts().items()):
                    note = ""
                    if kid == NO_KEY or kid not in ring.keys:
                        lacking += n
                        note = " (retired)" if kid in ring.retired else " (NOT IN RING)"
                    parts.append(f"{kid}: {n}{note}")
                self.stdout.write(f"  {column.label:<36} {', '.join(parts) or 'empty'}")
        return lacking

    def backend_columns(self) -> None:
        """Values sealed to the user's backend (HttpResolver): no key of this ring opens them."""
        counted = [(c.label, c.backend_counts()) for c in columns() if c.kind == "sealed"]
        counted = [(label, counts) for label, counts in counted if counts]
        if not counted:
            return
        self.stdout.write(
            "Sealed to the backend (values per backend key id; nothing here opens them):"
        )
        for label, counts in counted:
            parts = [f"sealed to backend key {kid}: {n}" for kid, n in sorted(counts.items())]
            self.stdout.write(f"  {label:<36} {', '.join(parts)}")

    def verdict(self, ring: Keyring, lacking: int) -> None:
        if lacking:
            self.stdout.write(
                self.style.ERROR(
                    f"{lacking} values sit under key ids the ring cannot use: put the old key "
                    "back in the ring and run `manage.py rotate_keys`."
                )
            )
        seals, age = cryptoperiod_exceeded(ring, timezone.now())
        if seals is not None:
            self.stdout.write(
                self.style.WARNING(
                    f"Primary key has sealed {seals} values, past SECUREGATHER_KEY_MAX_SEALS "
                    f"({settings.SECUREGATHER_KEY_MAX_SEALS}): rotate."
                )
            )
        if age is not None:
            self.stdout.write(
                self.style.WARNING(
                    f"Primary key is {age} days old, past SECUREGATHER_KEY_MAX_AGE_DAYS "
                    f"({settings.SECUREGATHER_KEY_MAX_AGE_DAYS}): rotate."
                )
            )
