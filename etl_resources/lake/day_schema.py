"""One schema per lake partition: the types of a day's batches reconciled without loss, or the day refused.

A source may send a column as int64 in one batch and float64 or string in the next (a JSON API page by page,
a folder of CSV files). Parquet parts of one day must agree, or folder readers fail and the manifest lies.
Widening is allowed where no value can change: Null to anything, a narrower integer to a wider one, an
integer to a float or decimal and a coarser timestamp to a finer one when every value survives the round
trip, and lists and structs field by field. Anything else (int then string, a time zone that changes) fails.
"""

from collections.abc import Mapping

import polars as pl

UNITS = {"ms": 0, "us": 1, "ns": 2}


class LakeSchemaError(ValueError):
    """The batches of one partition hold a column in two types that cannot be reconciled without loss."""


def widen(a: pl.DataType, b: pl.DataType) -> pl.DataType | None:
    """The narrowest type that holds both `a` and `b` (values still to be checked by `conform`), or None."""
    if a == b:
        return a
    if a == pl.Null or b == pl.Null:
        return b if a == pl.Null else a
    if a.is_integer() and b.is_integer():
        wider = pl.select(pl.lit(None, a).append(pl.lit(None, b))).to_series().dtype
        return wider if wider.is_integer() else None
    if (a.is_float() and (b.is_float() or b.is_integer())) or (b.is_float() and a.is_integer()):
        return pl.Float64
    if isinstance(a, pl.Decimal) or isinstance(b, pl.Decimal):
        return _decimal(a, b)
    if isinstance(a, pl.Datetime) and isinstance(b, pl.Datetime) and a.time_zone == b.time_zone:
        return a if UNITS[a.time_unit] > UNITS[b.time_unit] else b
    if isinstance(a, pl.Duration) and isinstance(b, pl.Duration):
        return a if UNITS[a.time_unit] > UNITS[b.time_unit] else b
    if isinstance(a, pl.List) and isinstance(b, pl.List):
        inner = widen(a.inner, b.inner)
        return pl.List(inner) if inner is not None else None
    if isinstance(a, pl.Struct) and isinstance(b, pl.Struct):
        return _struct(a, b)
    return None


def _decimal(a: pl.DataType, b: pl.DataType) -> pl.DataType | None:
    if not all(isinstance(t, pl.Decimal) or t.is_integer() for t in (a, b)):
        return None
    scale = max(t.scale for t in (a, b) if isinstance(t, pl.Decimal))
    digits = max(t.precision - t.scale if isinstance(t, pl.Decimal) else 38 - scale for t in (a, b))
    return pl.Decimal(min(38, digits + scale), scale)


def _struct(a: pl.Struct, b: pl.Struct) -> pl.DataType | None:
    fields = {f.name: f.dtype for f in a.fields}
    for f in b.fields:
        merged = widen(fields[f.name], f.dtype) if f.name in fields else f.dtype
        if merged is None:
            return None
        fields[f.name] = merged
    return pl.Struct(fields)


def lossless(column: pl.Series, dtype: pl.DataType) -> pl.Series | None:
    """`column` as `dtype`, or None if any value would change on the way (checked by casting back)."""
    if column.dtype == dtype:
        return column
    cast = column.cast(dtype, strict=False)
    if column.dtype == pl.Null:
        return cast
    if cast.null_count() != column.null_count() or not column.eq_missing(cast.cast(column.dtype, strict=False)).all():
        return None
    return cast


class DaySchema:
    """The running schema of one partition's batches, and where each column's type came from, for messages."""

    def __init__(self, label: str):
        self.label = label
        self.types: dict[str, pl.DataType] = {}
        self.seen_in: dict[str, tuple[int, pl.DataType]] = {}

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema(self.types)

    def admit(self, schema: Mapping[str, pl.DataType], batch: int) -> None:
        """Widen the schema to take a batch's types, or fail naming the column and both types."""
        for name, dtype in schema.items():
            known = self.types.get(name)
            if known is None or known == pl.Null:
                self.types[name], self.seen_in[name] = dtype, (batch, dtype)
                continue
            wider = widen(known, dtype)
            if wider is None:
                raise self.conflict(name, dtype, batch, "no type holds both without changing values")
            if wider != known:
                self.types[name] = wider
            if dtype != pl.Null and wider == dtype:
                self.seen_in[name] = (batch, dtype)

    def conform(self, frame: pl.DataFrame, batch: int) -> pl.DataFrame:
        """`frame` with every column of the schema, in its order and types; missing ones are null."""
        if frame.schema == self.schema:
            return frame
        columns = []
        for name, dtype in self.types.items():
            if name not in frame.columns:
                columns.append(pl.Series(name, [None] * frame.height, dtype=dtype))
                continue
            cast = lossless(frame[name], dtype)
            if cast is None:
                raise self.conflict(name, frame.schema[name], batch, f"some of batch {batch}'s values do not fit {type_name(dtype)} exactly")
            columns.append(cast)
        return pl.DataFrame(columns, schema=self.schema) if columns else frame

    def conflict(self, name: str, dtype: pl.DataType, batch: int, why: str) -> LakeSchemaError:
        first_batch, first_type = self.seen_in.get(name, (batch, self.types[name]))
        if first_batch > batch:
            first_batch, first_type, batch, dtype = batch, dtype, first_batch, first_type
        return LakeSchemaError(
            f"{self.label}: column '{name}' is {type_name(first_type)} in batch {first_batch} and {type_name(dtype)} in batch {batch}; "
            f"the day's Parquet parts must share one type and {why}, so nothing was committed "
            f"(fix: declare its type in the source's contract, e.g. `contract: {{columns: {{{name}: {{type: string}}}}}}`)"
        )


def type_name(dtype: pl.DataType) -> str:
    """Short Parquet-style names for messages and the UI's column table (`timestamp[us, UTC]`, `decimal(12,2)`, `int64`)."""
    if isinstance(dtype, pl.Datetime):
        return f"timestamp[{dtype.time_unit}{', ' + dtype.time_zone if dtype.time_zone else ''}]"
    if isinstance(dtype, pl.Decimal):
        return f"decimal({dtype.precision},{dtype.scale})"
    return str(dtype).lower()
