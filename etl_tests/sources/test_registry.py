"""Source kinds are plug-ins: a kind defined only here, registered the way the real ones are, is validated in a
sources file, listed in the JSON Schema and in the unknown-kind error, and materialized into the lake and the
warehouse, with no module of the platform edited."""

from collections.abc import Iterator
from typing import Literal

import dagster as dg
import polars as pl
import pytest

from etl_resources.config.cli import json_schema
from etl_resources.config.model import BaseSource
from etl_resources.config.sources_file import SourcesConfigError, load_sources
from etl_resources.lake.store import scan_partition
from etl_resources.sources import registry
from etl_resources.sources.base import ExtractRun, SourceKind


class CounterSource(BaseSource):
    kind: Literal["counter"]
    rows: int = 3

    @property
    def protocol(self) -> str:
        return "counter"

    @property
    def default_description(self) -> str:
        return f"{self.rows} counted rows"


def count_day(source: CounterSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    start, _ = run.window
    yield pl.DataFrame({"n": list(range(source.rows)), "day": [start.date().isoformat()] * source.rows})


COUNTER = SourceKind(kind="counter", model=CounterSource, extract=count_day, ui_kind=lambda source: "counter", reads=lambda source: f"{source.rows} rows")

SOURCES = """
sources:
  - name: counted
    kind: counter
    rows: 4
    start_date: 2026-11-01
    target: {table: counted}
"""


@pytest.fixture
def counter_kind(monkeypatch):
    """Registers the counter kind for one test; the registry is put back as it was afterwards."""
    monkeypatch.setattr(registry, "_KINDS", dict(registry._KINDS))
    registry.register(COUNTER)
    return COUNTER


def _supported() -> str:
    """The registered kinds as the unknown-kind error lists them: the built-in ones, and any a test added."""
    return ", ".join(repr(kind.kind) for kind in registry.kinds())


def test_a_sources_file_naming_a_registered_kind_validates(counter_kind, tmp_path):
    (tmp_path / "sources.yaml").write_text(SOURCES)

    [source] = load_sources(tmp_path / "sources.yaml", None).sources

    assert isinstance(source, CounterSource) and source.rows == 4


def test_the_json_schema_lists_a_registered_kind(counter_kind):
    schema = json_schema()

    sources = schema["properties"]["sources"]["items"]
    # Every registered kind, whichever the platform ships, and the one registered here.
    assert set(sources["properties"]["kind"]["enum"]) == {kind.kind for kind in registry.kinds()} >= {"sql", "rest", "files", "counter"}
    assert {"if": {"properties": {"kind": {"const": "counter"}}}, "then": {"$ref": "#/$defs/CounterSource"}} in sources["allOf"]
    assert schema["$defs"]["CounterSource"]["properties"]["rows"] == {"default": 3, "title": "Rows", "type": "integer"}


def test_an_unknown_kind_is_refused_naming_every_registered_one(counter_kind, tmp_path):
    (tmp_path / "sources.yaml").write_text(SOURCES.replace("kind: counter", "kind: countr"))

    with pytest.raises(SourcesConfigError) as caught:
        load_sources(tmp_path / "sources.yaml", None)

    supported = ", ".join(f"'{kind.kind}'" for kind in registry.kinds())
    assert supported.startswith("'sql', 'rest', 'files'") and supported.endswith("'counter'")
    assert f"line 4: source 'counted' (sources[0]), field 'kind': unknown kind 'countr'; supported: {supported}" in str(caught.value)


def test_a_registered_kind_is_materialized_into_the_lake_and_the_warehouse(counter_kind, platform):
    defs = platform.configure(SOURCES)

    assert platform.materialize(defs, "2026-11-02").success

    lake = scan_partition(platform.lake(defs), "raw/counted", "2026-11-02").collect()
    assert lake.select("n", "day").rows() == [(0, "2026-11-02"), (1, "2026-11-02"), (2, "2026-11-02"), (3, "2026-11-02")]
    assert platform.query(defs, "SELECT _partition, n, day FROM counted ORDER BY n") == [("2026-11-02", n, "2026-11-02") for n in range(4)]
    raw = defs.resolve_assets_def(dg.AssetKey(["raw", "counted_raw"]))
    assert {kind for spec in raw.specs for kind in spec.kinds} == {"counter", "parquet"}


def test_without_the_registration_the_kind_is_unknown(tmp_path):
    (tmp_path / "sources.yaml").write_text(SOURCES)

    with pytest.raises(SourcesConfigError, match="unknown kind 'counter'; supported: 'sql', 'rest', 'files'") as caught:
        load_sources(tmp_path / "sources.yaml", None)
    assert "counter" not in str(caught.value).rsplit("supported:", 1)[1]


def test_a_kind_whose_model_does_not_carry_its_tag_is_refused(counter_kind):
    with pytest.raises(ValueError, match="source kind 'tally': CounterSource must subclass BaseSource with the field `kind: Literal\\['tally'\\]`"):
        registry.register(SourceKind(kind="tally", model=CounterSource, extract=count_day, ui_kind=lambda source: "tally", reads=lambda source: ""))
    with pytest.raises(ValueError, match="source kind 'counter' is registered already"):
        registry.register(COUNTER)


def test_error_locations_leave_out_every_tag_of_the_nested_unions():
    """pydantic puts the chosen tag into an error's location (`sources.0.rest.auth.api_key.value`); the derived
    tags must hold the kinds and the rest auth types, so the message says `auth.value`."""
    assert {"sql", "rest", "files", "api_key", "bearer", "basic", "oauth2_client_credentials", "soap", "ws_security"} <= registry.discriminator_tags()


def test_a_rest_auth_error_names_the_field_without_its_tag(tmp_path):
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  - name: coins\n    kind: rest\n    base_url: https://api.example.net\n    auth: {type: bearer}\n"
        "    start_date: 2026-01-01\n    target: {table: coins}\n"
    )

    with pytest.raises(SourcesConfigError) as caught:
        load_sources(tmp_path / "sources.yaml", None)

    assert "source 'coins' (sources[0]), field 'auth.token': Field required (fix: add the field)" in str(caught.value)
