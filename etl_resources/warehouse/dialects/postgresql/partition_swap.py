"""The partition replace on PostgreSQL: build the day's rows as a table of their own, then swap it in.

Warehouse tables on PostgreSQL are LIST-partitioned by `_partition`, one partition per day. A load copies the
data columns into a new table, adds the lineage columns as constants, drops the day's old partition and
attaches the new one, all in one transaction. A column added with a constant default after its rows were
written is kept once in the catalog, not in every row, so the lineage costs the load nothing per row; and
replacing a day drops a table instead of deleting its rows and leaving them for VACUUM.
"""

import datetime as dt
import os
import re
from dataclasses import dataclass

import sqlalchemy as sa

from etl_resources.warehouse import names as warehouse_names
from etl_resources.warehouse.schema import LINEAGE_COLUMNS

PARTITION_CHECK = "etl_partition_check"


@dataclass(frozen=True)
class Lineage:
    loaded_at: dt.datetime
    source_file: str
    partition_key: str


def partition_table_name(table: str, partition_key: str) -> str:
    """`orders_p20261101`; long table names are cut and keep a hash, leaving room for the load suffix."""
    return warehouse_names.day_table("postgresql", table, partition_key)


def files_pattern(files: set[str]) -> str:
    """One file as it is; a write's several parts as one glob (`…/part-<write id>-*.parquet`) that matches just them."""
    if len(files) <= 1:
        return next(iter(files), "")
    names = sorted(files)
    prefix = os.path.commonprefix(names)
    prefix = prefix[: max(i for i, ch in enumerate(prefix) if not ch.isalnum()) + 1] if re.search(r"\W", prefix) else ""
    suffix = os.path.commonprefix([name[::-1] for name in names])[::-1]
    suffix = suffix[suffix.index(".") :] if "." in suffix else ""
    return f"{prefix}*{suffix}"


class PartitionSwap:
    """The statements of one swap, around the COPY of the data columns into `stage`."""

    def __init__(self, dialect: sa.Dialect, parent: sa.Table, partition_key: str, data_columns: list[str]):
        self.dialect = dialect
        self.parent = parent
        self.partition_key = partition_key
        self.data_columns = data_columns
        self.partition = partition_table_name(parent.name, partition_key)
        self.stage = sa.Table(
            warehouse_names.day_load_table("postgresql", parent.name, partition_key),
            sa.MetaData(),
            *(sa.Column(name, parent.c[name].type) for name in data_columns),
            schema=parent.schema,
        )

    def _quote(self, name: str) -> str:
        return self.dialect.identifier_preparer.quote(name)

    def _literal(self, value: str, type_: sa.types.TypeEngine | None = None) -> str:
        # str(): identifiers come as sqlalchemy's quoted_name, which literal() cannot type.
        expression = sa.literal(str(value), sa.Text()) if type_ is None else sa.cast(sa.literal(str(value), sa.Text()), type_)
        return str(expression.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True}))

    def _table(self, table: sa.Table | str) -> str:
        if isinstance(table, str):
            table = sa.Table(table, sa.MetaData(), schema=self.parent.schema)
        return self.dialect.identifier_preparer.format_table(table)

    def lock(self) -> str:
        """Two loads of one day take turns: the second waits here, then replaces what the first committed."""
        key = self._literal(f"{self.parent.fullname}|{self.partition_key}")
        return f"SELECT pg_advisory_xact_lock(hashtext({key}))"

    def lookup(self) -> str:
        """The day's current partition, the parent's CHECK constraints and NOT NULL data columns (a partition needs them all)."""
        parent = self._literal(self._table(self.parent))
        bound = self._literal(f"FOR VALUES IN ({self._literal(self.partition_key)})")
        return f"""
            SELECT 'partition', c.relname::text, NULL FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = {parent}::regclass AND pg_get_expr(c.relpartbound, c.oid) = {bound}
            UNION ALL
            SELECT 'check', conname::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = {parent}::regclass AND contype = 'c'
            UNION ALL
            SELECT 'not null', attname::text, NULL FROM pg_attribute
             WHERE attrelid = {parent}::regclass AND attnum > 0 AND attnotnull AND NOT attisdropped"""

    def create_stage(self) -> str:
        return str(sa.schema.CreateTable(self.stage).compile(dialect=self.dialect))

    def finish(self, found: list[tuple[str, str, str | None]], lineage: Lineage) -> list[str]:
        """Give the loaded rows every column and constraint of the parent, then swap them in for the old day."""
        stage = self._table(self.stage)
        constants = {
            "_loaded_at": self._literal(lineage.loaded_at.isoformat(), self.parent.c["_loaded_at"].type),
            "_source_file": self._literal(lineage.source_file),
            "_partition": self._literal(lineage.partition_key),
        }
        not_null = {name for kind, name, _ in found if kind == "not null"}
        changes = []
        for column in self.parent.columns:
            if column.name in LINEAGE_COLUMNS:
                changes.append(f"ADD COLUMN {self._quote(column.name)} {column.type.compile(dialect=self.dialect)} NOT NULL DEFAULT {constants[column.name]}")
            elif column.name not in self.data_columns:
                changes.append(f"ADD COLUMN {self._quote(column.name)} {column.type.compile(dialect=self.dialect)}")
        changes += [f"ALTER COLUMN {self._quote(name)} SET NOT NULL" for name in sorted(not_null - set(LINEAGE_COLUMNS))]
        # The parent's checks are checked again on the new rows (a NOT VALID check only spares the old ones);
        # the partition's own check lets ATTACH skip its scan, and all are checked in the one pass this ALTER makes.
        checks = {name: definition.removesuffix(" NOT VALID") for kind, name, definition in found if kind == "check"}
        checks.setdefault(PARTITION_CHECK, f"CHECK ({self._quote('_partition')} = {constants['_partition']})")
        changes += [f"ADD CONSTRAINT {self._quote(name)} {check}" for name, check in checks.items()]
        statements = [f"ALTER TABLE {stage} {', '.join(changes)}"]
        statements += [f"ALTER TABLE {stage} ALTER COLUMN {self._quote(name)} DROP DEFAULT" for name in LINEAGE_COLUMNS]
        statements += [f"DROP TABLE {self._table(name)}" for kind, name, _ in found if kind == "partition"]
        statements.append(f"ALTER TABLE {stage} RENAME TO {self._quote(self.partition)}")
        statements.append(f"ALTER TABLE {self._table(self.parent)} ATTACH PARTITION {self._table(self.partition)} FOR VALUES IN ({constants['_partition']})")
        return statements
