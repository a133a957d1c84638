"""Key rotation: find every sealed value and keyed digest, count them by key, move them to primary.

Columns are discovered, not listed: every SealedField and every DigestField of every installed
model. Rotation works in batches, each its own transaction, and picks only rows that still hold a
value under a key other than the primary, so a killed run resumes where it stopped and a rerun of a
finished one does nothing. Each batch locks its rows (``SELECT ... FOR UPDATE SKIP LOCKED``): a
call step holding a session's row lock is never overwritten; its row is taken on a later pass.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import CharField, Count, Q, Value
from django.db.models.functions import Concat, StrIndex, Substr

from keys import hpke
from keys.keyring import TOKEN_VERSION, Keyring, KeyringError, SealError
from keys.models import KeyRecord
from keys.sealed import DigestField, SealedField

# A pass that rotated nothing while rows remain waits this long for call steps holding their
# locks to commit (a step takes milliseconds), and gives up after MAX_PASSES.
PASS_PAUSE_SECONDS = 0.05
MAX_PASSES = 100
# SQLite allows 32,766 bound parameters per statement; stay well under it.
MAX_PARAMETERS = 30_000
NO_KEY = "(none)"


@dataclass(frozen=True)
class Column:
    """One sealed or digest column of one model."""

    model: type[models.Model]
    field: SealedField | DigestField

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"

    @property
    def kind(self) -> str:
        return "sealed" if isinstance(self.field, SealedField) else "digest"

    def kid_expression(self) -> Any:
        """SQL for the key id a value names: ``sg1:<kid>:...`` tokens, ``<kid>:<hex>`` digests."""
        name = self.field.attname
        start = len(TOKEN_VERSION) + 2 if self.kind == "sealed" else 1  # SQL counts from 1
        # A trailing ":" makes StrIndex find one even in a malformed value.
        text = Concat(Substr(name, start), Value(":"), output_field=CharField())
        return Substr(text, 1, StrIndex(text, Value(":")) - 1, output_field=CharField())

    def present(self) -> Q:
        """The values this column holds under a keyring key: a value sealed to the user's
        backend (keys.hpke) is none of the ring's to count, rotate or miss."""
        if self.kind == "sealed":
            return Q(**{f"{self.field.attname}__isnull": False}) & ~self.for_backend()
        return Q(**{f"{self.field.attname}__isnull": False}) & ~Q(**{self.field.attname: ""})

    def for_backend(self) -> Q:
        return Q(**{f"{self.field.attname}__startswith": f"{hpke.FORMAT}."})

    def backend_counts(self) -> dict[str, int]:
        """How many values sit sealed to each of the user's backend's key ids (none for a
        digest column). Call sessions are few and short-lived: counted here, not in SQL."""
        if self.kind != "sealed":
            return {}
        tokens = self.model._default_manager.filter(self.for_backend()).values_list(
            self.field.attname, flat=True
        )
        return dict(Counter(hpke.token_kid(token.token) or NO_KEY for token in tokens))

    def under(self, kid: str) -> Q:
        prefix = f"{TOKEN_VERSION}:{kid}:" if self.kind == "sealed" else f"{kid}:"
        return Q(**{f"{self.field.attname}__startswith": prefix})

    def counts(self, among: Q | None = None) -> dict[str, int]:
        """How many values sit under each key id (of the rows ``among`` selects)."""
        rows = (
            self.model._default_manager.filter(self.present(), among or Q())
            .annotate(kid=self.kid_expression())
            .order_by()
            .values("kid")
            .annotate(n=Count("pk"))
            .values_list("kid", "n")
        )
        return {kid or NO_KEY: n for kid, n in rows}


def rederivable(column: Column, ring: Keyring) -> dict[str, int]:
    """A digest column's values per key id whose sealed source is under a key the ring opens
    with: the ones rotation can derive again. (Counted by key id: a dry run opens nothing.)"""
    source = Column(column.model, column.field.source_field())  # type: ignore[union-attr]
    opens = Q(pk__in=[])
    for kid in ring.keys:
        opens |= source.under(kid)
    return column.counts(opens)


def columns() -> list[Column]:
    """Every sealed and digest column of every installed model."""
    found = []
    for model in apps.get_models():
        for f in model._meta.get_fields():
            if isinstance(f, SealedField | DigestField):
                found.append(Column(model, f))
    return found


def columns_by_model() -> dict[type[models.Model], list[Column]]:
    grouped: dict[type[models.Model], list[Column]] = {}
    for column in columns():
        grouped.setdefault(column.model, []).append(column)
    return grouped


def stale(ring: Keyring, cols: list[Column]) -> Q:
    """Rows holding a value rotate_keys can move: sealed under another key it holds, or a digest
    under any key but the primary."""
    q = Q(pk__in=[])
    others = [kid for kid in ring.keys if kid != ring.primary.kid]
    for column in cols:
        if column.kind == "sealed":
            for kid in others:
                q |= column.under(kid)
        else:
            q |= column.present() & ~column.under(ring.primary.kid)
    return q


@dataclass
class Result:
    rotated: Counter[str] = field(default_factory=Counter)  # values moved, per column label
    rows: int = 0
    stuck: int = 0  # rows left with a value no key in the ring opens
    remaining: int = 0  # rows still to rotate when the run ended
    lacking: dict[str, dict[str, int]] = field(default_factory=dict)  # see retired_or_absent
    total: int = 0
    seconds: float = 0.0


def pending(ring: Keyring) -> int:
    return sum(
        model._default_manager.filter(stale(ring, cols)).count()
        for model, cols in columns_by_model().items()
    )


def rotate(
    ring: Keyring,
    *,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Move every value rotate_keys can move to the ring's primary key. See the module docstring."""
    started = time.monotonic()
    changed = KeyRecord.remember(ring.every_key)
    if changed:
        raise KeyringError(f"key id {changed[0]!r} holds other bytes than it did", "changed")
    ring.recorded = True
    result = Result(total=pending(ring))
    for model, cols in columns_by_model().items():
        _rotate_model(ring, model, cols, batch_size, result, progress)
    result.remaining = pending(ring)
    result.lacking = retired_or_absent(ring)
    result.seconds = time.monotonic() - started
    return result


def _rotate_model(
    ring: Keyring,
    model: type[models.Model],
    cols: list[Column],
    batch_size: int,
    result: Result,
    progress: Callable[[int, int], None] | None,
) -> None:
    rows = model._default_manager.filter(stale(ring, cols))
    stuck = 0
    for _ in range(MAX_PASSES):
        moved, stuck = 0, 0
        for batch_moved, batch_stuck in _passes(ring, model, cols, rows, batch_size, result):
            moved += batch_moved
            stuck += batch_stuck
            if progress:
                progress(result.rows, result.total)
        if rows.count() <= stuck:
            break
        if not moved:
            _wait_for_locked_rows()
    result.stuck += stuck


def _wait_for_locked_rows() -> None:
    """Rows were skipped because a call step holds their lock: let it commit, try again."""
    time.sleep(PASS_PAUSE_SECONDS)


def _passes(
    ring: Keyring,
    model: type[models.Model],
    cols: list[Column],
    rows: models.QuerySet[Any],
    batch_size: int,
    result: Result,
) -> Iterator[tuple[int, int]]:
    """One pass over stale rows in primary-key order: yields (rows moved, rows stuck) per batch."""
    names = _read_names(model, cols)
    last: Any = None
    while True:
        with transaction.atomic():
            batch = rows.select_for_update(skip_locked=True).order_by("pk")
            if last is not None:
                batch = batch.filter(pk__gt=last)
            fetched = list(batch.values_list("pk", *names)[:batch_size])
            if not fetched:
                return
            last = fetched[-1][0]
            updates, stuck = _rotate_rows(ring, cols, names, fetched, result.rotated)
            _write(model, cols, updates)
        # Counted after the commit, so a batch never holds the key's row and call rows at once:
        # a call step that flushes its own count under a lock cannot wait in a cycle with it.
        KeyRecord.record_use(ring)
        result.rows += len(updates)
        yield len(updates), stuck


def _read_names(model: type[models.Model], cols: list[Column]) -> list[str]:
    names: list[str] = []
    for column in cols:
        f = column.field
        wanted = [f.attname]
        if isinstance(f, SealedField):
            wanted.append(f.context_field)
        else:
            source = f.source_field()
            wanted += [source.attname, source.context_field]
            if f.salt_field:
                wanted.append(f.salt_field)
        names += [name for name in wanted if name not in names]
    return names


def _rotate_rows(
    ring: Keyring,
    cols: list[Column],
    names: list[str],
    fetched: list[tuple[Any, ...]],
    rotated: Counter[str],
) -> tuple[list[tuple[Any, dict[str, str]]], int]:
    """New values for each row: (pk, {attname: value}); and how many rows keep a value stuck."""
    primary = ring.primary.kid
    # Labels and sealed fields looked up once a batch, not once a row.
    plan = [
        (
            column.label,
            column.field,
            column.field if isinstance(column.field, SealedField) else column.field.source_field(),
        )
        for column in cols
    ]
    updates, stuck = [], 0
    for pk, *values in fetched:
        row = dict(zip(names, values, strict=True))
        opened: dict[str, str] = {}
        changes: dict[str, str] = {}
        unopened = False
        for label, f, sealed in plan:
            current = row[f.attname]
            try:
                if isinstance(f, SealedField):
                    # A value sealed to the user's backend is no keyring's to rotate.
                    if current is None or current.key_id == primary or current.backend_kid:
                        continue
                    plaintext = _open(ring, sealed, row, opened)
                    changes[f.attname] = ring.seal(plaintext, opened[f"ctx:{f.attname}"])
                else:
                    if not current or current.partition(":")[0] == primary:
                        continue
                    plaintext = _open(ring, sealed, row, opened)
                    salt = row[f.salt_field] if f.salt_field else None
                    message = f.message_of(plaintext, salt)
                    changes[f.attname] = ring.digest(message, f.digest_purpose)
            except SealError:
                unopened = True
                continue
            rotated[label] += 1
        stuck += unopened
        if changes:
            updates.append((pk, changes))
    return updates, stuck


def _open(ring: Keyring, sealed: SealedField, row: dict[str, Any], opened: dict[str, str]) -> str:
    """A row's sealed plaintext, opened once per row (its context kept beside it, as
    ``ctx:<attname>``). SealError if there is none to open."""
    if sealed.attname not in opened:
        value = row[sealed.attname]
        if value is None:
            raise SealError("nothing to open")
        context = sealed.context_of(row[sealed.context_field])
        opened[sealed.attname] = ring.open(value.token, context)
        opened[f"ctx:{sealed.attname}"] = context
    return opened[sealed.attname]


def _write(model: type[models.Model], cols: list[Column], updates: list[tuple[Any, dict]]) -> None:
    """One ``UPDATE ... FROM`` per batch, writing only the rotated columns of the rotated rows.

    A column a row does not rotate is NULL in the batch and keeps its value (COALESCE).
    """
    if not updates:
        return
    written = [c.field for c in cols if any(c.field.attname in ch for _, ch in updates)]
    names = [f.attname for f in written]
    # Our own tables and columns, named by Django in lowercase: nothing here needs quoting.
    table = model._meta.db_table
    # A concrete field's column is a str; django-stubs types it str | None.
    pk = model._meta.pk.column  # type: ignore[union-attr]
    quoted = [str(f.column) for f in written]
    assignments = ", ".join(f"{q} = COALESCE(v.c{i}, {table}.{q})" for i, q in enumerate(quoted))
    aliases = ", ".join(["id", *(f"c{i}" for i in range(len(names)))])
    if connection.vendor == "postgresql":
        # One array per column: a statement of a few parameters, whatever the batch's size.
        pk_type = model._meta.pk.db_type(connection)
        arrays = ", ".join([f"%s::{pk_type}[]", *["%s::text[]"] * len(names)])
        params = [[key for key, _ in updates]]
        params += [[changes.get(name) for _, changes in updates] for name in names]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assignments} "  # noqa: S608 (names, not input)
                f"FROM unnest({arrays}) AS v({aliases}) WHERE {table}.{pk} = v.id",
                params,
            )
        return
    with connection.cursor() as cursor:
        per_row = len(names) + 1
        chunk = max(1, MAX_PARAMETERS // per_row)
        for start in range(0, len(updates), chunk):
            part = updates[start : start + chunk]
            rows = ", ".join(["(" + ", ".join(["%s"] * per_row) + ")"] * len(part))
            values: list[Any] = []
            for key, changes in part:
                values += [key, *(changes.get(name) for name in names)]
            cursor.execute(
                f"WITH v({aliases}) AS (VALUES {rows}) "  # noqa: S608 (names, not input)
                f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{pk} = v.id",
                values,
            )


def migrated_columns() -> list[Column]:
    """The columns the database has already: checks run before ``migrate`` creates new ones."""
    tables = set(connection.introspection.table_names())
    found, described = [], {}
    with connection.cursor() as cursor:
        for column in columns():
            table = column.model._meta.db_table
            if table not in tables:
                continue
            if table not in described:
                description = connection.introspection.get_table_description(cursor, table)
                described[table] = {info.name for info in description}
            if column.field.column in described[table]:
                found.append(column)
    return found


def retired_or_absent(ring: Keyring) -> dict[str, dict[str, int]]:
    """Per column label, the count of values under each key id the ring cannot use."""
    found: dict[str, dict[str, int]] = {}
    for column in migrated_columns():
        lacking = {
            kid: n for kid, n in column.counts().items() if kid not in ring.keys and kid != NO_KEY
        }
        if lacking:
            found[column.label] = lacking
    return found


def cryptoperiod_exceeded(ring: Keyring, now: datetime) -> tuple[int | None, int | None]:
    """(seals, age in days) of the primary key, each None unless past its configured limit."""
    record = KeyRecord.objects.filter(kid=ring.primary.kid).first()
    if record is None:
        return None, None
    seals = record.sealed_count + ring.unrecorded_seals
    age = (now - record.first_seen).days
    return (
        seals if seals > settings.SECUREGATHER_KEY_MAX_SEALS else None,
        age if age > settings.SECUREGATHER_KEY_MAX_AGE_DAYS else None,
    )
