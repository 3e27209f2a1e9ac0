"""Azure SQL / SQL Server as the warehouse: T-SQL types, bounded merge keys, and the stage-and-move load (load.py)."""

import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from etl_resources.warehouse.dialects import BINARY, DATE, TEXT, TIME, TIMESTAMP, TIMESTAMP_TZ, WarehouseDialect
from etl_resources.warehouse.dialects.mssql.load import load_day
from etl_resources.warehouse.names import Naming
from etl_resources.warehouse.write_modes import WriteModeError

# SQL Server's limit for a nonclustered index key; NVARCHAR(max) cannot be a key at all. 450 characters
# (900 bytes) also fits the clustered limit, should a DBA make the keys the primary key.
MSSQL_INDEX_KEY_BYTES = 1700
MSSQL_KEY_CHARACTERS = 450
MSSQL_FIXED_KEY_BYTES = 17  # the widest fixed-size key type, NUMERIC(38)


def bounded_key(generic: sa.types.TypeEngine, keys: int, bounded: int) -> sa.types.TypeEngine:
    """A text or bytes merge key's length, split so that all `keys` together (`bounded` of them text or bytes) fit one index key."""
    room = MSSQL_INDEX_KEY_BYTES - MSSQL_FIXED_KEY_BYTES * (keys - bounded)
    characters = max(1, min(MSSQL_KEY_CHARACTERS, room // (2 * bounded)))
    return mssql.VARBINARY(2 * characters) if isinstance(generic, sa.LargeBinary) else mssql.NVARCHAR(characters)


def check_indexable(dialect: sa.Dialect, table: sa.Table, keys: tuple[str, ...]) -> None:
    """SQL Server cannot index an NVARCHAR(max) or VARBINARY(max) column, as tables made for another write mode have."""
    unbounded = [key for key in keys if isinstance(table.c[key].type, (sa.String, sa.LargeBinary)) and getattr(table.c[key].type, "length", None) is None]
    if unbounded:
        key = unbounded[0]
        kind = "VARBINARY(900)" if isinstance(table.c[key].type, sa.LargeBinary) else "NVARCHAR(450)"
        raise WriteModeError(
            f"{table.fullname}: merge key '{key}' is {table.c[key].type.compile(dialect=dialect)}, which SQL Server cannot put in the unique "
            f"index a merge needs (fix: ALTER TABLE {dialect.identifier_preparer.format_table(table)} ALTER COLUMN "
            f"{dialect.identifier_preparer.quote(key)} {kind}, or load into a new table, which the merge creates with bounded key types)"
        )


DIALECT = WarehouseDialect(
    name="mssql",
    display_name="SQL Server",
    naming=Naming("mssql", limit=128, folds_case="unicode", default_schema="dbo", shared_index_names=False, stage_shadows_tables=False, load_stages=True),
    load_day=load_day,
    types={
        TIMESTAMP_TZ: mssql.DATETIMEOFFSET(),
        TIMESTAMP: mssql.DATETIME2(),
        DATE: mssql.DATE(),
        TIME: mssql.TIME(),
        BINARY: mssql.VARBINARY("max"),
        TEXT: mssql.NVARCHAR(),
    },
    key_type=bounded_key,
    add_column="ADD",
    check_key_columns=check_indexable,
    stores_nan=False,
    stores_infinity=False,
)
