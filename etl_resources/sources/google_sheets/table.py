"""A range's rows as typed columns: the header row names them, every column gets one exact type for the whole day.

The API leaves out a row's trailing empty cells and the range's trailing empty rows, and sends an empty cell
before a filled one as "": both are nulls here, and a row with no value at all is skipped.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from etl_resources.sources.records import RECORD_COLUMN, as_json

INT64 = (-(2**63), 2**63 - 1)
CELL = re.compile(r"^([A-Za-z]*)(\d*)$")


def cell_text(value: Any) -> str:
    """A cell as text, losslessly: a number as its shortest exact spelling, a boolean as the sheet shows it."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def column_index(letters: str) -> int:
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return max(index - 1, 0)


@dataclass(frozen=True)
class Origin:
    """Where the range starts, to name a cell the way the sheet does: 'Orders 2026'!C1."""

    sheet: str
    column: int
    row: int

    @classmethod
    def of(cls, returned_range: str) -> "Origin":
        sheet, _, cells = returned_range.rpartition("!")
        match = CELL.match(cells.split(":")[0]) or CELL.match("")
        return cls(sheet=sheet, column=column_index(match[1]), row=int(match[2] or 1))

    def cell(self, column: int, row: int) -> str:
        """The A1 name of the cell at 0-based `column` and `row` within the range."""
        name = f"{column_letters(self.column + column)}{self.row + row}"
        return f"{self.sheet}!{name}" if self.sheet else name


class SheetTableError(ValueError):
    pass


def dtype_of(values: list[Any]) -> pl.DataType:
    """One type for a column: bool, int64 or float64 when every value is one (and an int is exact as that), else text."""
    present = [value for value in values if value is not None]
    if present and all(isinstance(value, bool) for value in present):
        return pl.Boolean()
    if present and all(isinstance(value, int) and not isinstance(value, bool) and INT64[0] <= value <= INT64[1] for value in present):
        return pl.Int64()
    numbers = all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in present)
    if present and numbers and all(isinstance(value, float) or float(value) == value for value in present):
        return pl.Float64()
    return pl.String()


def typed(values: list[Any], dtype: pl.DataType) -> list[Any]:
    if dtype == pl.String():
        return [None if value is None else cell_text(value) for value in values]
    if dtype == pl.Float64():
        return [None if value is None else float(value) for value in values]
    return values


@dataclass(frozen=True)
class Table:
    names: list[str]
    positions: list[int]
    rows: list[list[Any]]
    dtypes: dict[str, pl.DataType]

    def frames(self, batch_size: int) -> Iterator[pl.DataFrame]:
        """At most `batch_size` rows a frame, every frame with the same columns and types; at least one frame."""
        for start in range(0, max(len(self.rows), 1), batch_size):
            yield self.frame(self.rows[start : start + batch_size])

    def frame(self, rows: list[list[Any]]) -> pl.DataFrame:
        columns = {name: [row[position] for row in rows] for name, position in zip(self.names, self.positions, strict=True)}
        records = [as_json({name: row[position] for name, position in zip(self.names, self.positions, strict=True)}) for row in rows]
        series = [pl.Series(name, typed(values, self.dtypes[name]), dtype=self.dtypes[name]) for name, values in columns.items()]
        return pl.DataFrame([*series, pl.Series(RECORD_COLUMN, records, dtype=pl.String)])


def cells(row: list[Any], width: int) -> list[Any]:
    """A row padded with nulls to the range's width, "" as null."""
    return [None if value == "" else value for value in row] + [None] * (width - len(row))


def table(values: list[list[Any]], returned_range: str, header_row: int) -> Table:
    """The rows under the header, or a SheetTableError naming the cell at fault."""
    origin = Origin.of(returned_range)
    if len(values) < header_row:
        raise SheetTableError(f"the range holds {len(values)} row(s), so header_row {header_row} ({origin.cell(0, header_row - 1)}) is empty")
    width = max(len(row) for row in values)
    header = cells(values[header_row - 1], width)
    # Each kept row with its position in the range, to name a cell at fault.
    numbered = [(index, row) for index, row in enumerate((cells(row, width) for row in values), 0) if index >= header_row]
    numbered = [(index, row) for index, row in numbered if any(value is not None for value in row)]
    names, positions = [], []
    seen: dict[str, int] = {}
    for position, name in enumerate(header):
        text = None if name is None else cell_text(name)
        if text is None or not text.strip():
            filled = next((index for index, row in numbered if row[position] is not None), None)
            if filled is not None:
                raise SheetTableError(
                    f"cell {origin.cell(position, filled)} holds a value but its column has no name in the header row "
                    f"({origin.cell(position, header_row - 1)} is empty)"
                )
            continue
        if text in seen or text == RECORD_COLUMN:
            other = f"{origin.cell(seen[text], header_row - 1)} too" if text in seen else "the column the platform keeps each original row in"
            raise SheetTableError(f"header {origin.cell(position, header_row - 1)} is {text!r}, like {other}")
        seen[text] = position
        names.append(text)
        positions.append(position)
    rows = [row for _, row in numbered]
    dtypes = {name: dtype_of([row[position] for row in rows]) for name, position in zip(names, positions, strict=True)}
    return Table(names=names, positions=positions, rows=rows, dtypes=dtypes)
