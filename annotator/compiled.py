"""ORM queries compiled to SQL once per process, database and shape, then run with new arguments.

The three requests an annotator makes per image (queue next, save, submit) run about ten small
queries each, and Django spent more CPU building their SQL than the database spent answering them
(bench/hot_requests.py: the compiler's ``as_sql`` and the query's ``build_filter``/``clone`` were
the largest own-time entries after the wait for PostgreSQL). A ``Compiled`` query is still written
with the ORM, in one place, so it is the same query on SQLite and PostgreSQL and the tests run it on
both. It is compiled the first time it is used, with stand-in values for its arguments; later calls
put the real arguments in the stand-ins' places and execute the SQL through the same connection
(same transaction, same query log), and Django's own converters and model construction turn the rows
into values or instances, as ``values_list()`` or iterating the queryset would.

Arguments are ids, strings, aware datetimes and lists of ids: values whose parameter is the value
itself, or for a datetime the backend's own adaptation of it (``adapt_datetimefield_value``). Anything
that changes the SQL's text is a *shape*, part of the cache key: every keyword that is not an
argument, an argument passed as None (the builder gets None and leaves its condition out), and the
length of a list of ids.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import F, QuerySet
from django.db.models.query import get_related_populators
from django.db.models.sql import UpdateQuery

# Stand-ins must be values the ORM lets through: Django turns a lookup on an integer column with a
# value outside the column's range into "no rows" (EmptyResultSet), so they are positive and within
# 32 bits (an AutoField or IntegerField; a SmallIntegerField argument cannot be compiled).
_INT_STANDIN = 2_000_000_000
_INT_STRIDE = 100_000  # per argument: room for a list of ids
_STR_STANDIN = "\x00twinlabel-argument-"
_DATETIME_STANDIN = datetime.datetime(1901, 1, 1, tzinfo=datetime.UTC)
_FLOAT_STANDIN = 1.0e15 + 0.25


@dataclass(frozen=True)
class _Plan:
    compiler: Any
    sql: str
    params: tuple
    slots: tuple[tuple[str, str, int | None] | None, ...]  # per parameter: (argument, kind, list position) or None
    update: bool = False


class Compiled:
    """``build(**arguments, **shape) -> QuerySet``, compiled once per (database, shape).

    ``arguments``: {name: kind} of the keyword arguments that are values, kind "int", "str",
    "datetime" or "ids" (a list of ids). Every other keyword the caller passes is a shape."""

    def __init__(self, build: Callable[..., QuerySet], arguments: dict[str, str]):
        self._build = build
        self._arguments = arguments
        self._plans: dict[tuple, _Plan] = {}
        self._lock = threading.Lock()

    def rows(self, *, using: str = DEFAULT_DB_ALIAS, **kwargs) -> list[tuple]:
        """The rows of a ``values_list()`` query, converted as Django converts them."""
        if _out_of_range(kwargs, self._arguments):
            return [tuple(row) for row in self._build(**kwargs).using(using)]
        plan, rows = self._run(using, kwargs)
        return list(plan.compiler.results_iter(results=[rows], tuple_expected=True)) if rows else []

    def instances(self, *, using: str = DEFAULT_DB_ALIAS, **kwargs) -> list:
        """The model instances of a plain, ``select_related()`` or ``annotate()``d query."""
        if _out_of_range(kwargs, self._arguments):
            return list(self._build(**kwargs).using(using))
        plan, rows = self._run(using, kwargs)
        if not rows:
            return []
        compiler = plan.compiler
        select, klass_info, annotations = compiler.select, compiler.klass_info, compiler.annotation_col_map
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        names = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, using)
        out = []
        for row in compiler.results_iter(results=[rows]):
            obj = klass_info["model"].from_db(using, names, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in (annotations or {}).items():
                setattr(obj, name, row[position])
            out.append(obj)
        return out

    def first(self, **kwargs):
        found = self.instances(**kwargs)
        return found[0] if found else None

    def update(self, *, using: str = DEFAULT_DB_ALIAS, **kwargs) -> int:
        """Run an UPDATE (``build`` returns ``(queryset, {field: value})``, what ``queryset.update``
        takes); the number of rows it changed."""
        if _out_of_range(kwargs, self._arguments):
            queryset, changes = self._build(**kwargs)
            return queryset.using(using).update(**changes)
        plan, count = self._run(using, kwargs)
        return count

    def _run(self, using: str, kwargs: dict) -> tuple[_Plan, list]:
        values = {}
        for name, kind in self._arguments.items():
            value = kwargs.pop(name)
            if value is None:
                kwargs[name] = None  # a shape: the builder leaves the condition out
            elif kind == "ids":
                values[name] = tuple(value)
                if len(values[name]) >= _INT_STRIDE:
                    raise ValueError(f"{name}: at most {_INT_STRIDE - 1} ids")
                kwargs[f"len({name})"] = len(values[name])
            else:
                values[name] = value
        plan = self._plan(using, kwargs)
        ops = connections[using].ops
        params = [
            p if slot is None else _like(p, _adapt(values[slot[0]], slot[1], ops, slot[2]))
            for slot, p in zip(plan.slots, plan.params)
        ]
        with connections[using].cursor() as cursor:
            cursor.execute(plan.sql, params)
            return plan, cursor.rowcount if plan.update else cursor.fetchall()

    def _plan(self, using: str, shape: dict[str, Hashable]) -> _Plan:
        key = (using, tuple(sorted(shape.items())))
        plan = self._plans.get(key)
        if plan is None:
            with self._lock:
                plan = self._plans.get(key) or self._compile(using, shape)
                self._plans[key] = plan
        return plan

    def _compile(self, using: str, shape: dict) -> _Plan:
        ops = connections[using].ops
        builder = {name: value for name, value in shape.items() if not name.startswith("len(")}
        wanted = [name for name in self._arguments if name not in builder]  # not passed as None
        standins = {
            name: _standin(self._arguments[name], i, shape.get(f"len({name})", 0)) for i, name in enumerate(wanted)
        }
        built = self._build(**standins, **builder)
        if isinstance(built, tuple):  # an UPDATE, as QuerySet.update builds it
            queryset, changes = built
            query = queryset.query.chain(UpdateQuery)
            query.add_update_values(changes)
            query.annotations = {}
            compiler = query.get_compiler(using=using)
            sql, params = compiler.as_sql()
            if query.related_updates:
                raise ValueError("an UPDATE of more than one table cannot be compiled")
        else:
            compiler = built.using(using).query.get_compiler(using=using)
            sql, params = compiler.as_sql()
        places = {}  # adapted stand-in -> (argument, kind, position in a list)
        for name, value in standins.items():
            kind = self._arguments[name]
            for position, one in enumerate(value) if kind == "ids" else [(None, value)]:
                adapted = _adapt(one, kind, ops, None)
                places[(_key_type(adapted), adapted)] = (name, kind, position)
        slots = [places.get((_key_type(param), param)) if _hashable(param) else None for param in params]
        missing = {name for name, value in standins.items() if value != ()} - {slot[0] for slot in slots if slot}
        if missing:  # an argument that did not become a parameter would be silently ignored
            raise ValueError(f"{sorted(missing)} did not reach the SQL as parameters: make them shapes")
        return _Plan(compiler, sql, tuple(params), tuple(slots), isinstance(built, tuple))


def _standin(kind: str, index: int, length: int):
    if kind == "int":
        return _INT_STANDIN + _INT_STRIDE * index
    if kind == "ids":
        return tuple(_INT_STANDIN + _INT_STRIDE * index + 1 + i for i in range(length))
    if kind == "str":
        return f"{_STR_STANDIN}{index}"
    if kind == "datetime":
        return _DATETIME_STANDIN + datetime.timedelta(seconds=index)
    if kind == "float":
        return _FLOAT_STANDIN + index
    raise ValueError(f"unknown argument kind {kind!r}")


_INT_RANGE = (-(2**31), 2**31 - 1)  # every id column holds these (an AutoField is 32 bits)


def _out_of_range(kwargs: dict, arguments: dict[str, str]) -> bool:
    """Whether an integer argument lies outside 32 bits. The ORM then answers as the column's range
    says (a value no row can hold: no rows, Django's EmptyResultSet) where the database driver would
    refuse the parameter (SQLite: "Python int too large", psycopg: an Int4 that overflows), so such
    a call (an id from a fuzzer or a typo, never a real one) goes the ORM's way: same answer, slower."""
    low, high = _INT_RANGE
    for name, kind in arguments.items():
        value = kwargs.get(name)
        if value is None or kind not in ("int", "ids"):
            continue
        if any(not low <= int(v) <= high for v in (value if kind == "ids" else (value,))):
            return True
    return False


def _key_type(value) -> type:
    # Django wraps some integers for psycopg (Int4, Int8: int subclasses that carry the SQL type).
    return int if isinstance(value, int) and not isinstance(value, bool) else type(value)


def _like(template, value):
    """``value`` in the wrapper the ORM put the stand-in in (psycopg's Int4 for an integer column)."""
    kind = type(template)
    return kind(value) if kind is not type(value) and kind is not int and isinstance(template, int) else value


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _adapt(value, kind: str, ops, position: int | None):
    if position is not None:  # one id of a list
        return int(value[position])
    if kind == "datetime":
        return ops.adapt_datetimefield_value(value)
    if kind in ("int", "ids"):
        return int(value)
    if kind == "float":
        return float(value)
    return value


_KINDS = (  # a field's argument kind, by the field's class (the first that matches)
    (models.DateTimeField, "datetime"),
    (models.FloatField, "float"),
    (models.BooleanField, None),  # SQLite stores 0/1, PostgreSQL true/false: not a stand-in we can match
    (models.SmallIntegerField, None),  # too narrow for the stand-ins
    (models.IntegerField, "int"),
    (models.AutoField, "int"),
    (models.ForeignKey, "int"),
    (models.CharField, "str"),
)
_UPDATES: dict[tuple, Compiled] = {}


def row_update(model: type[models.Model], where: dict, changes: dict, increment: tuple[str, ...] = ()) -> int:
    """``model.objects.filter(**where).update(**changes, <each of increment>=F(...) + 1)``, compiled once
    per (model, the keys of ``where`` and ``changes``, which changes are None, ``increment``). ``where``:
    equality on concrete fields (``pk`` too); ``changes``: field names (a foreign key by its name, given a
    model instance or None, or by its attname, given an id). Falls back to the ORM for a field whose
    values cannot be stood in for."""
    meta = model._meta
    values, kinds = {}, {}
    for name, value in {**{f"w_{k}": v for k, v in where.items()}, **{f"c_{k}": v for k, v in changes.items()}}.items():
        field = meta.pk if name == "w_pk" else meta.get_field(name[2:])
        if isinstance(value, models.Model):
            value = value.pk
        kind = next((kind for cls, kind in _KINDS if isinstance(field, cls)), None)
        if kind is None:
            return model.objects.filter(**where).update(**changes, **{f: F(f) + 1 for f in increment})
        values[name], kinds[name] = value, kind
    key = (model, tuple(kinds.items()), increment)
    compiled = _UPDATES.get(key)
    if compiled is None:
        compiled = _UPDATES[key] = Compiled(
            lambda **v: (
                model.objects.filter(**{k[2:]: x for k, x in v.items() if k.startswith("w_")}),
                {
                    **{_attname(meta, k[2:]): x for k, x in v.items() if k.startswith("c_")},
                    **{f: F(f) + 1 for f in increment},
                },
            ),
            kinds,
        )
    return compiled.update(**values)


def _attname(meta, name: str) -> str:
    field = meta.get_field(name)
    return field.attname if isinstance(field, models.ForeignKey) else name
