"""The lake types of a SOAP source's columns, from what the WSDL declares of a record, not from a day's values.

So an empty day, or a day where a field is nil in every record, keeps the schema of the others. xsd:decimal is
left to its values (a Decimal at the scale they need): zeep drops `fractionDigits`, so the WSDL gives no scale.
"""

from typing import Any

import polars as pl

from etl_resources.sources.records import RECORD_COLUMN, Nested, rows_frame

# zeep's classes of the XSD built-in types, by name; a type not here is typed from its values.
BUILTIN_TYPES: dict[str, pl.DataType] = {
    "String": pl.String(),
    "NormalizedString": pl.String(),
    "Token": pl.String(),
    "AnyURI": pl.String(),
    "Boolean": pl.Boolean(),
    "Float": pl.Float64(),
    "Double": pl.Float64(),
    "Integer": pl.Int64(),
    "Long": pl.Int64(),
    "Int": pl.Int64(),
    "Short": pl.Int64(),
    "Byte": pl.Int64(),
    "NonNegativeInteger": pl.Int64(),
    "PositiveInteger": pl.Int64(),
    "NonPositiveInteger": pl.Int64(),
    "NegativeInteger": pl.Int64(),
    "UnsignedInt": pl.Int64(),
    "UnsignedShort": pl.Int64(),
    "UnsignedByte": pl.Int64(),
    "UnsignedLong": pl.UInt64(),
    "Date": pl.Date(),
    "DateTime": pl.Datetime("us", "UTC"),
}


def _children(xsd_type: Any) -> list[tuple[str, Any]] | None:
    """The child elements of a complex type, None for a simple one."""
    return list(xsd_type.elements) if hasattr(xsd_type, "elements") else None


def _unwrapped(operation: Any) -> Any:
    """The type of what zeep returns for the operation: the body, less the wrappers zeep removes (one part, one child)."""
    xsd_type = operation.output.body.type
    children = _children(xsd_type)
    if children is None or len(children) != 1:
        return xsd_type
    xsd_type = children[0][1].type
    children = _children(xsd_type)
    if children is not None and len(children) == 1 and not xsd_type.attributes:
        xsd_type = children[0][1].type
    return xsd_type


def record_type(operation: Any, records: str | None) -> Any | None:
    """The complex type of a record at the dotted `records` path, None where the WSDL does not say it plainly."""
    xsd_type, element = _unwrapped(operation), None
    for part in records.split(".") if records else []:
        element = dict(_children(xsd_type) or []).get(part)
        if element is None:
            return None
        xsd_type = element.type
    repeated = element is not None and element.max_occurs != 1
    return xsd_type if repeated and _children(xsd_type) is not None else None


def columns(xsd_type: Any, nested: Nested, prefix: str = "") -> dict[str, pl.DataType | None]:
    """Each declared field's lake type, named as `records.record_row` names it: lists and, with `json`, objects as text.

    A flattened object is None: its fields are columns of their own, and its name is a column only where it was nil."""
    declared: dict[str, pl.DataType | None] = {}
    for name, element in _children(xsd_type) or []:
        column = f"{prefix}{name}"
        inner = _children(element.type)
        if element.max_occurs != 1 or (inner is not None and nested == "json"):
            declared[column] = pl.String()
        elif inner is not None:
            declared |= {column: None} | columns(element.type, nested, f"{column}_")
        elif type(element.type).__name__ in BUILTIN_TYPES:
            declared[column] = BUILTIN_TYPES[type(element.type).__name__]
    return declared


def typed_frame(rows: list[dict[str, Any]], declared: dict[str, pl.DataType | None]) -> pl.DataFrame:
    """The rows as a frame with every declared column in its declared type, present or not in the day's rows."""
    frame = rows_frame(rows)
    typed = [
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype, strict=True).alias(name) for name, dtype in declared.items() if dtype is not None
    ]
    rest = [name for name in frame.columns if name not in declared and name != RECORD_COLUMN]
    return frame.select(*typed, *rest, RECORD_COLUMN)
