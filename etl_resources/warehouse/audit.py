"""The `etl_audit_log` table: one row per source partition per attempt, success or failure."""

import datetime as dt
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from etl_resources.warehouse.dialects import IDENTITY, TEXT, typed
from etl_resources.warehouse.dialects.mssql.offset import UtcOffset

AUDIT_TABLE = "etl_audit_log"

metadata = sa.MetaData()
audit_log = sa.Table(
    AUDIT_TABLE,
    metadata,
    sa.Column("id", typed(IDENTITY, sa.BigInteger()), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Unicode(64), nullable=False),
    sa.Column("pipeline_name", sa.Unicode(256), nullable=False),
    sa.Column("source_name", sa.Unicode(256), nullable=False),
    sa.Column("protocol", sa.Unicode(64), nullable=False),
    sa.Column("target_table", sa.Unicode(256), nullable=False),
    sa.Column("partition_key", sa.Unicode(32), nullable=False),
    sa.Column("step", sa.Unicode(16), nullable=False),
    sa.Column("status", sa.Unicode(16), nullable=False),
    sa.Column("rows_loaded", sa.BigInteger()),
    sa.Column("parquet_files", sa.Integer()),
    sa.Column("error_message", typed(TEXT, sa.UnicodeText())),
    sa.Column("started_at", UtcOffset(), nullable=False),
    sa.Column("finished_at", UtcOffset()),
)


@dataclass(frozen=True)
class AuditRow:
    run_id: str
    pipeline_name: str
    source_name: str
    protocol: str
    target_table: str
    partition_key: str
    step: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime
    rows_loaded: int | None = None
    parquet_files: int | None = None
    error_message: str | None = None


def write_audit_rows(engine: sa.Engine, rows: list[AuditRow]) -> None:
    """Written in a transaction of their own, so a failure row survives the rollback of the load it reports."""
    with engine.begin() as conn:
        metadata.create_all(conn, tables=[audit_log], checkfirst=True)
        conn.execute(audit_log.insert(), [asdict(row) for row in rows])
