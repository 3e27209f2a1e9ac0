"""ADBC connections to PostgreSQL for columnar reads (extraction), from the same SQLAlchemy URL, and the lake
type of each result column the driver cannot hand over exactly as Arrow."""

import adbc_driver_postgresql.dbapi as adbc
import polars as pl
import pyarrow as pa
import sqlalchemy as sa

from etl_resources.databases.declared_types import MAX_DECIMAL_PRECISION


def connect_adbc(url: sa.URL) -> adbc.Connection:
    """A DB-API connection (autocommit off) through ADBC's PostgreSQL driver; libpq takes the URL as is."""
    return adbc.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))


def _pg_type(field: pa.Field) -> str:
    return (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()


def _exact_in_arrow(arrow_type: pa.DataType) -> bool:
    """Whether the driver decodes this type to Arrow exactly. It hands over uuid as 16 bytes, inet, timetz, bit and
    others as PostgreSQL's binary form, numeric as text, and interval as months/days/nanoseconds (no lake type)."""
    if isinstance(arrow_type, pa.BaseExtensionType) or pa.types.is_interval(arrow_type):
        return False
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _exact_in_arrow(arrow_type.value_type)
    return True


def numeric_dtype(typmod: int) -> pl.DataType:
    """`numeric(p,s)` with p <= 38 is Decimal(p,s); plain `numeric` and wider ones are exact text. Decided by the
    column's declaration, never by its values, so every day of a source has the same schema."""
    if typmod < 0:
        return pl.String()
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    return pl.Decimal(precision, scale) if precision <= MAX_DECIMAL_PRECISION else pl.String()


def text_casts(schema: pa.Schema) -> tuple[dict[str, str], dict[str, pl.Decimal]]:
    """For the columns the driver would not decode exactly: the cast that has the server render them as text
    (its canonical text form: json as written, uuid with hyphens, inet, interval, timetz, bit…), and the Decimal
    type of each numeric column declared to fit one (the other numerics stay exact text)."""
    casts: dict[str, str] = {}
    decimals: dict[str, pl.Decimal] = {}
    for field in schema:
        if _exact_in_arrow(field.type) and _pg_type(field) != "money":
            continue
        if _pg_type(field) == "numeric":
            dtype = numeric_dtype(int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1")))
            if isinstance(dtype, pl.Decimal):
                decimals[field.name] = dtype
            casts[field.name] = "text"
        elif pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            casts[field.name] = "text[]"
        else:
            # money's own text carries the locale's currency sign; its numeric value does not.
            casts[field.name] = "numeric::text" if _pg_type(field) == "money" else "text"
    return casts, decimals
