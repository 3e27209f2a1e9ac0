"""How each warehouse names things: the identifier limit, case folding, the schema, and the names a load makes.

A load makes names besides its target: PostgreSQL's day tables (`orders_p20261101`) and their load tables
(`…_load`), the partition and keys indexes, and a merge's staging table. Two targets that are one table on
the warehouse, or a target that is another target's generated name, would replace or drop each other's
rows; a name over the warehouse's limit is cut by the server (PostgreSQL, with only a NOTICE), so the table
is then not found by its name. Both are refused when the definitions load, and again before a load runs.
"""

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from etl_resources.secrets import SECRET_REF
from etl_resources.warehouse.dialects import SUPPORTED, for_dialect

HASH_LENGTH = 8
DAY_DIGITS = 8
LOAD_SUFFIX = "_load"
MERGE_SUFFIX = "__merge"
STAGE_INFIX = "__stage_"
STAGE_ID_DIGITS = 12
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class WarehouseNameError(ValueError):
    pass


@dataclass(frozen=True)
class Naming:
    """One dialect's rules. `limit` counts bytes of UTF-8 (PostgreSQL) or characters (SQL Server)."""

    dialect: str
    limit: int | None = None
    limit_in_bytes: bool = False
    # "ascii": A-Z equal a-z only (SQLite); "unicode": every letter's case (SQL Server's default collation).
    folds_case: str | None = None
    has_schemas: bool = True
    default_schema: str | None = None
    # Indexes share the tables' namespace (PostgreSQL, SQLite); on SQL Server they belong to their table.
    shared_index_names: bool = True
    # Whether a merge's temporary staging table can be taken for (and dropped as) a permanent table of that name.
    stage_shadows_tables: bool = True
    day_tables: bool = False
    # Loads fill a real table `<table>__stage_<id>` beside the target (SQL Server), so a bulk copy's own connection can see it.
    load_stages: bool = False

    def length(self, name: str) -> int:
        return len(name.encode()) if self.limit_in_bytes else len(name)

    @property
    def unit(self) -> str:
        return "bytes" if self.limit_in_bytes else "characters"

    @property
    def limit_text(self) -> str:
        return f"{self.limit} {self.unit}"

    def fold(self, name: str) -> str:
        if self.folds_case == "ascii":
            return name.translate(ASCII_LOWER)
        return name.casefold() if self.folds_case == "unicode" else name

    def fits(self, name: str, limit: int | None = None) -> bool:
        limit = limit or self.limit
        return limit is None or self.length(name) <= limit

    def fitted(self, prefix: str, base: str, suffix: str, limit: int | None = None) -> str:
        """`prefix + base + suffix`, or, when that is over the limit, `base` cut and a hash of it kept."""
        limit = limit or self.limit
        name = prefix + base + suffix
        if self.fits(name, limit):
            return name
        room = limit - self.length(prefix + suffix) - HASH_LENGTH - 1
        cut = base.encode()[:room].decode(errors="ignore") if self.limit_in_bytes else base[:room]
        return f"{prefix}{cut}_{hashlib.sha1(base.encode()).hexdigest()[:HASH_LENGTH]}{suffix}"


def naming(dialect: str) -> Naming:
    """The rules of `dialect` (SQLAlchemy's backend name), which must be a supported warehouse."""
    return for_dialect(dialect).naming


def day_table(dialect: str, table: str, partition_key: str) -> str:
    """`orders_p20261101`; a long table name is cut and keeps a hash, leaving room for the load suffix."""
    rules = naming(dialect)
    day = "_p" + re.sub(r"\W", "", partition_key)
    limit = rules.limit - rules.length(LOAD_SUFFIX) if rules.limit else None
    return rules.fitted("", table, day, limit)


def day_load_table(dialect: str, table: str, partition_key: str) -> str:
    return day_table(dialect, table, partition_key) + LOAD_SUFFIX


def partition_index(dialect: str, table: str) -> str:
    return naming(dialect).fitted("ix_", table, "__partition")


def keys_index(dialect: str, table: str) -> str:
    return naming(dialect).fitted("ux_", table, "__keys")


def merge_stage(dialect: str, table: str) -> str:
    return naming(dialect).fitted("", table, MERGE_SUFFIX)


def load_stage_prefix(dialect: str, table: str) -> str:
    """`orders__stage_`: what every load stage of `table` starts with, cut and hashed like the other names when long."""
    return naming(dialect).fitted("", table, STAGE_INFIX + "0" * STAGE_ID_DIGITS)[:-STAGE_ID_DIGITS]


def load_stage(dialect: str, table: str, load_id: str) -> str:
    return load_stage_prefix(dialect, table) + load_id


def is_load_stage(dialect: str, table: str, name: str) -> bool:
    """Whether `name` is a stage a load of `table` makes (its prefix, then exactly the id's hex digits)."""
    return Generated("load staging table", load_stage_prefix(dialect, table), load_id=True).matches(naming(dialect), name)


def sql_text(statement: str) -> sa.TextClause:
    """`text()` of a statement holding quoted names, where a colon is the name's (a column `x :y`), not a parameter's."""
    return sa.text(statement.replace(":", "\\:"))


@dataclass(frozen=True)
class Generated:
    """A name a load of some target makes; `day` when it holds a day's eight digits after `prefix`."""

    what: str
    prefix: str
    suffix: str = ""
    day: bool = False
    load_id: bool = False

    def matches(self, rules: Naming, name: str) -> bool:
        name, prefix, suffix = rules.fold(name), rules.fold(self.prefix), rules.fold(self.suffix)
        if not (self.day or self.load_id):
            return name == prefix + suffix
        middle = name[len(prefix) : len(name) - len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else ""
        if self.load_id:
            return re.fullmatch(f"[0-9a-f]{{{STAGE_ID_DIGITS}}}", middle) is not None
        return len(middle) == DAY_DIGITS and middle.isdigit()

    @property
    def shown(self) -> str:
        middle = "YYYYMMDD" if self.day else "X" * STAGE_ID_DIGITS if self.load_id else ""
        return f"{self.prefix}{middle}{self.suffix}"


def generated(dialect: str, table: str, write_mode: str) -> list[Generated]:
    """The names in the target's schema that loads of `table` make, besides the table itself."""
    rules = naming(dialect)
    names = []
    if rules.day_tables and write_mode != "merge":
        prefix = day_table(dialect, table, "2026-11-01")[:-DAY_DIGITS]
        names += [Generated("day table", prefix, day=True), Generated("day load table", prefix, LOAD_SUFFIX, day=True)]
    if rules.shared_index_names and (write_mode != "replace_partition" or not rules.day_tables):
        names.append(Generated("index", partition_index(dialect, table)))
    if write_mode == "merge":
        if rules.shared_index_names:
            names.append(Generated("keys index", keys_index(dialect, table)))
        if rules.stage_shadows_tables:
            names.append(Generated("merge staging table", merge_stage(dialect, table)))
    if rules.load_stages:
        names.append(Generated("load staging table", load_stage_prefix(dialect, table), load_id=True))
    return names


def physical(dialect: str, schema: str | None, table: str) -> tuple[str | None, str]:
    """The table a target is on this warehouse: schema and name as the server compares them."""
    rules = naming(dialect)
    schema = (schema or rules.default_schema) if rules.has_schemas else None
    return (None if schema is None else rules.fold(schema), rules.fold(table))


def same_table_reason(dialect: str, a: tuple[str | None, str], b: tuple[str | None, str]) -> str:
    """Why two targets, as written (schema, table), are one table on `dialect`; for the message."""
    rules = naming(dialect)
    reasons = []
    if not rules.has_schemas and a[0] != b[0]:
        reasons.append(f"{dialect} ignores the schema")
    if rules.has_schemas and (a[0] is None) != (b[0] is None):
        reasons.append(f"no schema means {rules.default_schema} there")
    if rules.folds_case and (a[1] != b[1] or (rules.has_schemas and None not in (a[0], b[0]) and a[0] != b[0])):
        reasons.append(f"{dialect} compares names without case")
    return "; ".join(reasons) or "the same schema and table"


def too_long(dialect: str, schema: str | None, table: str, write_mode: str) -> list[str]:
    """Each of the target's names (schema, table, what its loads make) that the warehouse would cut, with why."""
    rules = naming(dialect)
    if rules.limit is None:
        return []
    names = [("schema", schema)] if schema and rules.has_schemas else []
    names.append(("table", table))
    names += [
        (g.what, g.shown.replace("YYYYMMDD", "0" * DAY_DIGITS).replace("X" * STAGE_ID_DIGITS, "0" * STAGE_ID_DIGITS))
        for g in generated(dialect, table, write_mode)
    ]
    return [f"{what} {name!r} is {rules.length(name)} {rules.unit}" for what, name in names if not rules.fits(name)]


def limit_message(dialect: str, schema: str | None, table: str, write_mode: str) -> str | None:
    problems = too_long(dialect, schema, table, write_mode)
    if not problems:
        return None
    rules = naming(dialect)
    return (
        f"{'; '.join(problems)}, over {dialect}'s limit of {rules.limit_text} for a name, which the server would cut "
        f"(fix: a {'schema and ' if len(problems) > 1 or problems[0].startswith('schema') else ''}table name of at most {rules.limit_text})"
    )


def check_target(dialect: str, schema: str | None, table: str, write_mode: str) -> None:
    """Before a load: refuse a target the warehouse would cut (a sources file checked without knowing the warehouse)."""
    problem = limit_message(dialect, schema, table, write_mode)
    if problem:
        raise WarehouseNameError(f"loading {f'{schema}.' if schema else ''}{table}: field 'target': {problem}")


def column_clashes(dialect: str, columns: list[str], existing: Iterable[str] = ()) -> list[str]:
    """Columns the warehouse would take for one column (case folded), or cut (over its limit), as sentences."""
    rules = naming(dialect)
    problems = []
    seen: dict[str, str] = {rules.fold(name): name for name in existing}
    for name in columns:
        if not rules.fits(name):
            problems.append(
                f"column {name!r} is {rules.length(name)} {rules.unit}, over {dialect}'s limit of "
                f"{rules.limit_text}, and the server would cut it (fix: rename it in the source's query or contract to at most {rules.limit_text})"
            )
        other = seen.get(rules.fold(name))
        if other is not None and other != name:
            problems.append(
                f"columns {other!r} and {name!r} are one column on {dialect}, which compares column names without case "
                "(fix: rename one of them in the source's query or contract)"
            )
        seen.setdefault(rules.fold(name), name)
    return problems


def reserved_clashes(dialect: str, columns: list[str], reserved: Iterable[str]) -> list[str]:
    """Source columns named (as the warehouse compares names) like a column the load writes itself."""
    rules = naming(dialect)
    ours = {rules.fold(name): name for name in reserved}
    return [
        f"column {name!r} is {ours[rules.fold(name)]!r}, a column the load writes itself (fix: rename it in the source's query or contract)"
        for name in columns
        if rules.fold(name) in ours
    ]


def check_columns(dialect: str, table: str, columns: list[str], existing: Iterable[str] = (), reserved: Iterable[str] = ()) -> None:
    problems = reserved_clashes(dialect, columns, reserved) + column_clashes(dialect, columns, existing)
    if problems:
        raise WarehouseNameError(f"loading {table}: {'; '.join(problems)}")


@dataclass(frozen=True)
class TargetName:
    """A source's target as written in the sources file, with how messages name the source."""

    index: int
    label: str
    name: str | None
    schema: str | None
    table: str
    write_mode: str

    @property
    def written(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @property
    def other(self) -> str:
        return f"sources[{self.index}], source {self.name!r}"


def target_problems(dialects: tuple[str, ...], known: bool, targets: list[TargetName]) -> list[tuple[int, str]]:
    """(index, message) for each target that is too long, is one table with an earlier target, or is a name
    another target's loads make, on any of `dialects`; one message a target."""
    unknown = (
        "" if known else " (the warehouse URL is a secret not read here, so every supported warehouse's rules apply; etl-config validate takes --warehouse-url)"
    )
    problems: dict[int, str] = {}
    for dialect in dialects:
        for target in targets:
            message = _limit_problem(dialect, target) or next(
                (found for other in targets if other is not target and (found := _clash(dialect, target, other))), None
            )
            if message:
                problems.setdefault(target.index, f"{target.label}, field 'target': {message}{unknown}")
    return sorted(problems.items())


def _limit_problem(dialect: str, target: TargetName) -> str | None:
    problem = limit_message(dialect, target.schema, target.table, target.write_mode)
    return f"{target.written}: {problem}" if problem else None


def _clash(dialect: str, target: TargetName, other: TargetName) -> str | None:
    here, there = physical(dialect, target.schema, target.table), physical(dialect, other.schema, other.table)
    if here == there and other.index < target.index:
        reason = same_table_reason(dialect, (target.schema, target.table), (other.schema, other.table))
        return (
            f"{target.written} is already the target of {other.other}"
            + (f", as {other.written}" if other.written != target.written else "")
            + f": one table on {dialect} ({reason}), and each source's loads would replace the other's rows (fix: give each source its own target table)"
        )
    names = generated(dialect, other.table, other.write_mode)
    made = next((name for name in names if name.matches(naming(dialect), target.table)), None)
    if here[0] == there[0] and made:
        return (
            f"{target.written} is the name of the {made.what} ({made.shown}) that loads of {other.written}, the target of {other.other}, "
            f"make on {dialect} (fix: give this source a table name that does not match {', '.join(name.shown for name in names)})"
        )
    return None


def warehouse_dialects(url_template: str | None, lookup: Callable[[str], str | None] | None = None) -> tuple[tuple[str, ...], bool]:
    """The dialect(s) to check names against, and whether the warehouse was known. A URL that is one secret
    is looked up with `lookup` (name -> value or None) when given; when it cannot be read, every supported
    warehouse is checked. A known URL of an unsupported dialect raises UnsupportedWarehouseError."""
    template = (url_template or "").strip()
    whole = SECRET_REF.fullmatch(template)
    if whole and lookup is not None:
        try:
            template = lookup(whole.group(1)) or ""
        except KeyError:
            template = ""
    try:
        backend = sa.make_url(template).get_backend_name() if template and not SECRET_REF.fullmatch(template) else None
    except sa.exc.ArgumentError:
        backend = None
    if backend is None:
        return SUPPORTED, False
    # A warehouse the platform cannot load into fails here, when the definitions load, rather than at the first load.
    return (for_dialect(backend).name,), True
