"""The statements every call step runs, with their SQL built once per process, not per query.

Django builds a query's SQL anew each time it runs it, and for the short statements of a call
step that costs more than the database does: on the 2-core benchmark machine, a session's row lock
took 1.1 ms through a QuerySet and 0.4 ms as a statement built once, a save() 1.1 ms against an
UPDATE's 0.3 ms (each timed over 500 runs in one transaction). These helpers run the SQL the ORM
would run and convert values both ways as it does (``get_db_prep_save`` in, the query compiler's
converters out), so fields with conversions of their own (SealedField, JSONField, datetimes on
SQLite) behave as they do through the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, TypeVar

from django.db import connections, router
from django.db.models import CharField, Field, Model, QuerySet, TextField
from django.db.models.sql.compiler import SQLCompiler

M = TypeVar("M", bound=Model)

# Stand-ins for the parameters of a query compiled once: each must reach the SQL's parameters
# unchanged, which holds for lookups on text columns (the only ones compiled here).
_SLOT_PREFIX, _SLOT_END = "\x00statements-slot-", "\x00"


def _slots(count: int) -> list[str]:
    return [f"{_SLOT_PREFIX}{i}{_SLOT_END}" for i in range(count)]


def _slot_index(param: object) -> int | None:
    """Which slot ``param`` is, or None when it is a value of the query's own."""
    if isinstance(param, str) and param.startswith(_SLOT_PREFIX) and param.endswith(_SLOT_END):
        return int(param[len(_SLOT_PREFIX) : -len(_SLOT_END)])
    return None


@dataclass(frozen=True)
class _Fixed:
    """A parameter of the compiled query that is not a slot: the same every time."""

    value: Any


@dataclass(frozen=True)
class _Compiled:
    alias: str
    sql: str
    params: list[int | _Fixed]  # a slot's index, or a fixed value
    compiler: SQLCompiler
    converters: dict[int, Any]
    attnames: list[str]


class Query:
    """A QuerySet compiled once per database, run again with new values for its slots.

    ``build`` takes one stand-in per parameter and returns the QuerySet, e.g.
    ``Query(lambda sid: CallSession.objects.select_for_update().filter(call_sid=sid))``;
    ``arity`` says how many when ``build`` takes ``*values``.
    """

    def __init__(self, build: Callable[..., QuerySet[Any]], arity: int | None = None) -> None:
        self.build = build
        self.arity = build.__code__.co_argcount if arity is None else arity

    @cached_property
    def model(self) -> type[Model]:
        return self.build(*_slots(self.arity)).model

    @lru_cache(maxsize=8)  # noqa: B019 (one per database alias, for the life of the process)
    def _compiled(self, alias: str) -> _Compiled:
        compiler = self.build(*_slots(self.arity)).query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots = [_slot_index(p) for p in params]
        if sorted(i for i in slots if i is not None) != list(range(self.arity)):
            raise ValueError("each slot of a compiled query must be one of its parameters, once")
        columns = [expression for expression, _, _ in compiler.select[: compiler.col_count]]
        return _Compiled(
            alias,
            sql,
            [_Fixed(p) if i is None else i for i, p in zip(slots, params, strict=True)],
            compiler,
            compiler.get_converters(columns),
            [getattr(getattr(column, "target", None), "attname", "") for column in columns],
        )

    def rows(self, *values: object) -> list[tuple[Any, ...]]:
        """The query's rows for ``values``, converted as the ORM converts them."""
        return self._run(self._compiled(router.db_for_read(self.model)), values)

    def all(self, *values: object) -> list[Any]:
        """The model instances of the query's rows for ``values``."""
        alias = router.db_for_read(self.model)
        compiled = self._compiled(alias)
        rows = self._run(compiled, values)
        return [self.model.from_db(alias, compiled.attnames, row) for row in rows]

    @staticmethod
    def _run(compiled: _Compiled, values: tuple[object, ...]) -> list[tuple[Any, ...]]:
        params = [p.value if isinstance(p, _Fixed) else values[p] for p in compiled.params]
        rows = _execute(compiled.alias, compiled.sql, params, fetch=True)
        if compiled.converters:
            return [
                tuple(row) for row in compiled.compiler.apply_converters(rows, compiled.converters)
            ]
        return rows

    def first(self, *values: object) -> Any:
        """The model instance of the query's first row for ``values``, or None."""
        return next(iter(self.all(*values)), None)


# The writes a deferring() block holds for its next statement, as (alias, sql, params); None
# outside such a block.
_held: ContextVar[list[tuple[str, str, list[Any]]] | None] = ContextVar(
    "statements_held", default=None
)


@contextmanager
def deferring() -> Iterator[None]:
    """Send the block's writes ahead of the next statement run here, in the same round trip.

    Nobody reads the result of an UPDATE or of an INSERT of missing rows, so on PostgreSQL it
    need not wait for one: ``update()`` and ``insert_missing()`` hold it, and the next ``Query``,
    ``insert()`` or the block's end sends it and that statement as one string (psycopg binds
    parameters on the client, and runs several statements in one execute). Other databases run
    it at once: SQLite is in the process, with no round trip to save. Only this module's
    statements come after a held write: in the block, read what it writes through them, not
    through the ORM. A block that raises sends nothing it held, as its transaction rolls back
    anyway. A block inside another leaves what it holds to the outer one.
    """
    if _held.get() is not None:
        yield
        return
    held: list[tuple[str, str, list[Any]]] = []
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
    for alias in dict.fromkeys(alias for alias, _, _ in held):
        _execute(alias, "", [], fetch=False, held=held)


def _execute(
    alias: str,
    sql: str,
    params: list[Any],
    *,
    fetch: bool,
    held: list[tuple[str, str, list[Any]]] | None = None,
    then: str = "",
) -> list[tuple[Any, ...]]:
    """Run ``sql`` after the writes held for ``alias`` and before ``then``, in one execute;
    its rows if ``fetch``."""
    held = _held.get() if held is None else held
    batch = [(sql, params)] if sql else []
    if held and any(held_alias == alias for held_alias, _, _ in held):
        batch = [(s, p) for a, s, p in held if a == alias] + batch
        held[:] = [h for h in held if h[0] != alias]
    text = "; ".join([*(s for s, _ in batch), *([then] if then else [])])
    with connections[alias].cursor() as cursor:
        cursor.execute(text, [p for _, ps in batch for p in ps])
        if not fetch:
            return []
        # The rows are ``sql``'s: step past the held writes' (empty) results.
        for _ in batch[1:]:
            cursor.nextset()
        return cursor.fetchall()


def _write(alias: str, sql: str, params: list[Any]) -> None:
    """Run a write whose result nobody reads, or hold it in a deferring() block on PostgreSQL."""
    held = _held.get()
    if held is not None and connections[alias].vendor == "postgresql":
        held.append((alias, sql, params))
    else:
        _execute(alias, sql, params, fetch=False)


def _table(model: type[Model], alias: str) -> tuple[Any, str]:
    connection = connections[alias]
    return connection, connection.ops.quote_name(model._meta.db_table)


def update(instance: Model, *, exclude: tuple[str, ...] = ()) -> None:
    """Write the fields of a saved instance, as ``save()`` does, in one UPDATE by primary key:
    every field but those in ``exclude`` (ones that never change after the INSERT).

    In a deferring() block on PostgreSQL, the UPDATE goes with the next statement.
    """
    alias = instance._state.db or router.db_for_write(type(instance))
    connection = connections[alias]
    fields = _written_fields(type(instance), exclude)
    values = _db_values([instance], fields, connection, add=False)
    _write(alias, _update_sql(type(instance), alias, exclude), [*values, instance.pk])


@lru_cache(maxsize=32)
def _update_sql(model: type[Model], alias: str, exclude: tuple[str, ...]) -> str:
    connection, table = _table(model, alias)
    quote = connection.ops.quote_name
    fields = _written_fields(model, exclude)
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    pk = quote(model._meta.pk.column)
    # Table and column names come from the model, quoted; every value is a parameter.
    return f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608


def insert(instances: Sequence[M], *, ignore_conflicts: bool = False, commit: bool = False) -> int:
    """INSERT new instances in one statement, in order; return how many rows it inserted.

    Primary keys are set from the database (every supported backend returns them). With
    ``ignore_conflicts``, a row that would break a unique constraint is skipped (ON CONFLICT DO
    NOTHING), and primary keys are set only when no row was skipped: which of several rows were
    is not known.

    With ``commit``, for the last statement of an outermost transaction, PostgreSQL gets the
    COMMIT in the same round trip; the atomic() block then finds nothing left to commit (psycopg
    sends no COMMIT for a transaction the server has ended). Elsewhere Django commits as ever.
    """
    if not instances:
        return 0
    model = type(instances[0])
    alias = router.db_for_write(model)
    connection = connections[alias]
    values = _db_values(instances, _written_fields(model), connection, add=True)
    sql = _insert_sql(model, alias, len(instances), ignore_conflicts)
    then = "COMMIT" if commit and connection.vendor == "postgresql" else ""
    ids = [row[0] for row in _execute(alias, sql, values, fetch=True, then=then)]
    if len(ids) == len(instances):
        for instance, pk in zip(instances, ids, strict=True):
            instance.pk = pk
            instance._state.adding, instance._state.db = False, alias
    return len(ids)


def insert_missing(instances: Sequence[Model]) -> None:
    """INSERT the rows that are not there yet (ON CONFLICT DO NOTHING), returning nothing.

    In a deferring() block on PostgreSQL, the INSERT goes with the next statement, as update()'s.
    """
    if not instances:
        return
    model = type(instances[0])
    alias = router.db_for_write(model)
    connection = connections[alias]
    values = _db_values(instances, _written_fields(model), connection, add=True)
    _write(alias, _insert_sql(model, alias, len(instances), True), values)


@lru_cache(maxsize=32)
def _written_fields(model: type[Model], exclude: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """The fields an INSERT or UPDATE writes, in the order of their SQL: all but the key."""
    return tuple(
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and field.name not in exclude
    )


@lru_cache(maxsize=128)
def _sent_as_is(field: Field) -> bool:
    """Whether a str value of ``field`` reaches the database unchanged through the ORM.

    True for a text column with Django's own conversions: pre_save reads the attribute, and
    CharField's and TextField's to_python hand back a str as it is. Asking saves the calls of
    get_db_prep_save for most of the values a step writes.
    """
    kind = type(field)
    return (
        isinstance(field, CharField | TextField)
        and kind.pre_save is Field.pre_save
        and kind.get_db_prep_save is Field.get_db_prep_save
        and kind.get_db_prep_value is Field.get_db_prep_value
        and kind.get_prep_value in (CharField.get_prep_value, TextField.get_prep_value)
    )


def _db_values(
    instances: Sequence[Model], fields: tuple[Any, ...], connection: Any, *, add: bool
) -> list[Any]:
    """The values of ``fields`` for each instance, in order, as the ORM would send them."""
    values = []
    for instance in instances:
        for field in fields:
            value = getattr(instance, field.attname)
            if type(value) is not str or not _sent_as_is(field):
                value = field.get_db_prep_save(field.pre_save(instance, add), connection)
            values.append(value)
    return values


@lru_cache(maxsize=32)
def _insert_sql(model: type[Model], alias: str, count: int, ignore_conflicts: bool) -> str:
    connection, table = _table(model, alias)
    quote = connection.ops.quote_name
    fields = _written_fields(model)
    columns = ", ".join(quote(field.column) for field in fields)
    rows = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * count)
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    returning = quote(model._meta.pk.column)
    # Names come from the model, quoted; every value is a parameter.
    return f"INSERT INTO {table} ({columns}) VALUES {rows}{conflict} RETURNING {returning}"  # noqa: S608
