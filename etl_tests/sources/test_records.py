"""Records as frames, as REST, MongoDB, SOAP and stream kinds build them: a column whose values no one type holds
exactly becomes text, each value spelled as JSON spells it, instead of being rounded or coerced by polars."""

import datetime as dt
import decimal

import polars as pl

from etl_resources.sources.records import parse_json, rows_frame


def test_a_big_int_next_to_a_float_stays_exact_as_text():
    frame = rows_frame([{"n": 2**53 + 1}, {"n": 1.5}, {"n": None}])
    assert frame.schema["n"] == pl.String and frame["n"].to_list() == ["9007199254740993", "1.5", None]


def test_ints_and_floats_that_a_float_holds_exactly_stay_numbers():
    frame = rows_frame([{"n": 2**53}, {"n": 0.25}])
    assert frame.schema["n"] == pl.Float64 and frame["n"].to_list() == [2.0**53, 0.25]


def test_a_bool_next_to_an_int_is_not_turned_into_one():
    frame = rows_frame([{"flag": True}, {"flag": 1}, {"flag": False}])
    assert frame["flag"].to_list() == ["true", "1", "false"]


def test_a_float_next_to_text_keeps_its_spelling():
    assert rows_frame([{"v": 1.0}, {"v": "x"}, {"v": 10}])["v"].to_list() == ["1.0", "x", "10"]


def test_decimals_wider_than_38_digits_together_become_text_and_narrower_ones_stay_decimal():
    wide = rows_frame([{"d": decimal.Decimal("12345678901234567890123456789.5")}, {"d": decimal.Decimal("0.0000000001")}])
    assert wide["d"].to_list() == ["12345678901234567890123456789.5", "1E-10"]  # Decimal's own exact spelling
    narrow = rows_frame([{"d": decimal.Decimal("1.25")}, {"d": 3}])
    assert narrow.schema["d"] == pl.Decimal(38, 2) and narrow["d"].to_list() == [decimal.Decimal("1.25"), decimal.Decimal("3.00")]


def test_other_values_mixed_with_text_are_spelled_by_the_kind_default():
    when = dt.datetime(2026, 11, 20, 1, 2, 3, 4, tzinfo=dt.UTC)
    frame = rows_frame([{"t": when}, {"t": "later"}], default=lambda value: value.isoformat())
    assert frame["t"].to_list() == ["2026-11-20T01:02:03.000004+00:00", "later"]


def test_an_int_past_int64_is_text_not_null():
    big = 10**39 + 1  # a numeric(40) key, as a JSON number
    frame = rows_frame([{"n": big}, {"n": 1}, {"n": None}])
    assert frame.schema["n"] == pl.String and frame["n"].to_list() == [str(big), "1", None]
    assert rows_frame([{"n": 2**63}])["n"].to_list() == ["9223372036854775808"]


def test_json_numbers_a_double_cannot_hold_arrive_as_decimals_and_the_others_as_floats():
    parsed = parse_json('{"price": 12345678901234567890.123456789, "rate": 0.1, "tiny": 1.5e-7, "huge": 1e400}')
    assert parsed == {"price": decimal.Decimal("12345678901234567890.123456789"), "rate": 0.1, "tiny": 1.5e-7, "huge": decimal.Decimal("1E+400")}
    assert isinstance(parsed["rate"], float) and isinstance(parsed["price"], decimal.Decimal)
    frame = rows_frame([{"price": parsed["price"]}, {"price": decimal.Decimal("1.5")}])
    assert frame.schema["price"] == pl.Decimal(38, 9) and frame["price"].to_list()[0] == parsed["price"]
