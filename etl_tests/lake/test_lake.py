"""The lake IO manager on a local folder and on ADLS through the Blob API (a real Azurite started by the suite)."""

import datetime as dt
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import polars as pl
import pytest
from azure.storage.blob import ContainerClient

from etl_assets.partitions import daily_partitions, range_tags
from etl_resources.lake.day_schema import LakeSchemaError
from etl_resources.lake.io_manager import LAKE_DATASET, LakeIOManager
from etl_resources.lake.store import partition_files, read_manifest, scan_partition, write_partition
from etl_tests.support.servers import AZURITE_KEY

PARTS = daily_partitions(dt.date(2026, 11, 1))


@pytest.fixture(params=["local", "azurite"])
def lake_backend(request, workdir):
    """(IO manager, listing) for a local-folder lake and for an Azurite container."""
    if request.param == "local":
        return LakeIOManager(url=str(workdir / "lake")), workdir
    azurite, container = request.getfixturevalue("azurite"), request.getfixturevalue("container")
    return LakeIOManager(url=azurite.lake_url(container.container_name), account_key=AZURITE_KEY, endpoint=azurite.endpoint), container


def blobs(container: ContainerClient | Path, prefix: str) -> list[str]:
    """File names below a prefix, listed by the Blob API itself or, for the local lake, by the file system."""
    if isinstance(container, Path):
        folder = container / prefix
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
    return sorted(blob.name.removeprefix(prefix) for blob in container.list_blobs(name_starts_with=prefix))


def numbers_assets(fail_after_first_batch: bool = False):
    seen: dict[str, pl.DataFrame] = {}

    def batches(key: str):
        yield pl.DataFrame({"day": [key] * 3, "n": [1, 2, 3]})
        if fail_after_first_batch:
            raise ConnectionError("source went away mid-extract")
        yield pl.DataFrame({"day": [key], "n": [40]})

    @dg.asset(partitions_def=PARTS, io_manager_key="lake_io_manager", backfill_policy=dg.BackfillPolicy.single_run())
    def numbers(context: dg.AssetExecutionContext):
        """Two batches per partition, streamed to the lake."""
        frames = {key: batches(key) for key in context.partition_keys}
        return dg.Output(frames if len(frames) > 1 else frames[context.partition_key])

    @dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run(), io_manager_key="lake_io_manager")
    def numbers_total(context: dg.AssetExecutionContext, numbers) -> None:
        """What a downstream asset receives: a LazyFrame per partition, read back from the lake with polars."""
        by_key = numbers if isinstance(numbers, dict) else {context.partition_key: numbers}
        seen.update({key: frame.collect() for key, frame in by_key.items()})

    return [numbers, numbers_total], seen


def test_io_manager_writes_a_partition_range_and_reads_it_back(lake_backend, instance):
    io_manager, container = lake_backend
    assets, seen = numbers_assets()

    result = dg.materialize(
        assets,
        resources={"lake_io_manager": io_manager},
        instance=instance,
        tags=range_tags("2026-11-01", "2026-11-02"),
    )

    assert result.success
    for day in ("2026-11-01", "2026-11-02"):
        names = blobs(container, f"lake/numbers/date={day}/")
        assert names[0] == "_manifest.json" and len(names) == 3 and all(n.endswith(".parquet") for n in names[1:])
        assert seen[day].sort("n").to_dict(as_series=False)["n"] == [1, 2, 3, 40]
        assert seen[day]["_source_file"].is_in([f"numbers/date={day}/{name}" for name in names[1:]]).all()
    assert instance.get_materialized_partitions(dg.AssetKey("numbers")) == {"2026-11-01", "2026-11-02"}
    assert blobs(container, "lake/numbers/_staging/") == []


def test_an_asset_stored_under_its_lake_dataset_is_read_there_in_its_run_and_in_a_later_one(lake_backend, instance):
    """The folder comes from the definition's `lake_dataset`, not from the key, on write and on both kinds of read."""
    io_manager, container = lake_backend
    seen: list[pl.DataFrame] = []

    @dg.asset(key=["raw", "numbers_raw"], partitions_def=PARTS, io_manager_key="lake_io_manager", metadata={LAKE_DATASET: "raw/numbers"})
    def numbers() -> pl.DataFrame:
        return pl.DataFrame({"n": [1, 2]})

    @dg.asset(partitions_def=PARTS, io_manager_key="lake_io_manager", ins={"numbers": dg.AssetIn(key=numbers.key)})
    def numbers_total(numbers) -> None:
        seen.append(numbers.collect())

    resources = {"lake_io_manager": io_manager}
    dg.materialize([numbers, numbers_total], resources=resources, instance=instance, partition_key="2026-11-05")
    dg.materialize([numbers, numbers_total], resources=resources, instance=instance, partition_key="2026-11-05", selection=[numbers_total.key])

    assert blobs(container, "lake/raw/numbers/date=2026-11-05/")[0] == "_manifest.json"
    assert blobs(container, "lake/raw/numbers_raw/") == []
    assert [frame["n"].to_list() for frame in seen] == [[1, 2], [1, 2]]


def test_rewriting_a_partition_replaces_its_files(lake_backend, instance):
    io_manager, container = lake_backend
    assets, _ = numbers_assets()
    dg.materialize(assets[:1], resources={"lake_io_manager": io_manager}, instance=instance, partition_key="2026-11-03")
    first = blobs(container, "lake/numbers/date=2026-11-03/")

    dg.materialize(assets[:1], resources={"lake_io_manager": io_manager}, instance=instance, partition_key="2026-11-03")

    second = blobs(container, "lake/numbers/date=2026-11-03/")
    assert len(second) == len(first) == 3
    assert set(first) & set(second) == {"_manifest.json"}
    assert scan_partition(io_manager.lake(), "numbers", "2026-11-03").collect().height == 4


def test_an_interrupted_write_leaves_the_previous_partition_visible(lake_backend, instance):
    io_manager, container = lake_backend
    good, _ = numbers_assets()
    dg.materialize(good[:1], resources={"lake_io_manager": io_manager}, instance=instance, partition_key="2026-11-04")
    before = blobs(container, "lake/numbers/date=2026-11-04/")

    failing, _ = numbers_assets(fail_after_first_batch=True)
    result = dg.materialize(failing[:1], resources={"lake_io_manager": io_manager}, instance=instance, partition_key="2026-11-04", raise_on_error=False)

    assert not result.success
    assert blobs(container, "lake/numbers/date=2026-11-04/") == before
    assert blobs(container, "lake/numbers/_staging/") == []
    assert scan_partition(io_manager.lake(), "numbers", "2026-11-04").collect()["n"].sort().to_list() == [1, 2, 3, 40]


def test_a_source_partition_end_to_end_through_azurite(platform, azurite, container, demo_sources):
    defs = platform.configure(
        demo_sources,
        lake_url=azurite.lake_url(container.container_name, "bronze"),
        lake_account_key=AZURITE_KEY,
        lake_endpoint=azurite.endpoint,
    )
    day = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()

    result = platform.materialize(defs, day, selection=["raw/shop_orders_raw", "warehouse/shop/orders"])

    assert result.success
    names = blobs(container, f"bronze/raw/shop_orders/date={day}/")
    assert names[0] == "_manifest.json" and names[1].startswith("part-")
    (count, files) = platform.query(defs, "SELECT COUNT(*), MIN(_source_file) FROM orders")[0]
    assert count == platform.manifest(defs, "raw/shop_orders", day)["rows"] > 0
    assert files == f"raw/shop_orders/date={day}/{names[1]}"


def part_schemas(lake, dataset: str, day: str) -> list[dict[str, pl.DataType]]:
    """The schema stored in each committed Parquet file of a day, read from the file itself."""
    schemas = []
    for path in partition_files(lake, dataset, day):
        with lake.fs.open(path, "rb") as fh:
            schemas.append(dict(pl.read_parquet_schema(fh)))
    return schemas


def test_batches_of_one_day_are_widened_to_one_schema(lake_backend):
    io_manager, _ = lake_backend
    lake = io_manager.lake()
    batches = [
        pl.DataFrame({"n": pl.Series([1, 2], dtype=pl.Int32), "x": [None, None]}),
        pl.DataFrame({"n": pl.Series([3], dtype=pl.Int64), "x": [1.5], "added": ["a"]}),
        pl.DataFrame({"n": pl.Series([4], dtype=pl.Int16), "x": [2**52]}),
    ]

    write_partition(lake, "mixed", "2026-11-05", iter(batches))

    expected = {"n": pl.Int64, "x": pl.Float64, "added": pl.String}
    assert part_schemas(lake, "mixed", "2026-11-05") == [expected] * 3
    assert read_manifest(lake, "mixed", "2026-11-05")["schema"] == {"n": "int64", "x": "float64", "added": "string"}
    rows = scan_partition(lake, "mixed", "2026-11-05").collect().sort("n")
    assert rows.to_dict(as_series=False) == {"n": [1, 2, 3, 4], "x": [None, None, 1.5, 2.0**52], "added": [None, None, "a", None]}


@pytest.mark.parametrize(
    ("first", "second", "types"),
    [
        (pl.Series([2**53 + 1]), pl.Series([0.5]), "int64 in batch 1 and float64 in batch 2"),
        (pl.Series([1]), pl.Series(["one"]), "int64 in batch 1 and string in batch 2"),
        (
            pl.Series([dt.datetime(2026, 11, 5)]),
            pl.Series([dt.datetime(2026, 11, 5, tzinfo=dt.UTC)]),
            "timestamp[us] in batch 1 and timestamp[us, UTC] in batch 2",
        ),
    ],
)
def test_types_that_cannot_be_reconciled_fail_the_day(lake_backend, first, second, types):
    io_manager, container = lake_backend
    lake = io_manager.lake()

    with pytest.raises(LakeSchemaError) as raised:
        write_partition(lake, "mixed", "2026-11-05", iter([pl.DataFrame({"v": first}), pl.DataFrame({"v": second})]))

    assert f"mixed 2026-11-05: column 'v' is {types}" in str(raised.value)
    assert "fix: declare its type in the source's contract" in str(raised.value)
    assert read_manifest(lake, "mixed", "2026-11-05") is None
    assert blobs(container, "lake/mixed/") == []


@pytest.fixture
def immutable(workdir):
    """`chattr +i` on a folder: even root cannot delete what is in it, a real PermissionError from the OS."""
    frozen: list[Path] = []

    def freeze(path: Path) -> None:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("chattr +i is not available here")
        frozen.append(path)

    yield freeze
    for path in frozen:
        if path.exists():
            subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_failed_cleanup_keeps_the_real_error_and_the_next_write_removes_its_leftovers(workdir, instance, immutable):
    io_manager = LakeIOManager(url=str(workdir / "lake"))
    staging = workdir / "lake/numbers/_staging"

    def batches():
        yield pl.DataFrame({"n": [1, 2, 3]})
        while not (parts := list(staging.rglob("part-00000.parquet"))) or not _complete(parts[0]):
            time.sleep(0.02)
        immutable(parts[0].parent)
        raise ConnectionError("source went away mid-extract")

    @dg.asset(partitions_def=PARTS, io_manager_key="lake_io_manager", name="numbers")
    def failing():
        return dg.Output(batches())

    result = dg.materialize([failing], resources={"lake_io_manager": io_manager}, instance=instance, partition_key="2026-11-06", raise_on_error=False)

    error = result.get_step_failure_events()[0].step_failure_data.error
    while error.cause is not None and error.cls_name != "ConnectionError":
        error = error.cause
    assert error.cls_name == "ConnectionError" and error.message.startswith("ConnectionError: source went away mid-extract")
    assert "could not remove the staged parts at" in error.message and "PermissionError" in error.message
    assert blobs(workdir, "lake/numbers/_staging/") != []

    subprocess.run(["chattr", "-i", str(next(staging.rglob("part-00000.parquet")).parent)], check=True)
    good, _ = numbers_assets()
    assert dg.materialize(good[:1], resources={"lake_io_manager": io_manager}, instance=instance, partition_key="2026-11-06").success
    assert blobs(workdir, "lake/numbers/_staging/") == []


def test_staging_left_earlier_in_the_same_second_is_removed_whatever_its_random_suffix(workdir, instance, monkeypatch):
    """A failed write and the retry that follows within the same second: the retry still removes its leftovers.

    The lake's clock is pinned so that both fall in one second, which real runs only sometimes do."""
    now = dt.datetime(2026, 11, 7, 1, 2, 3, 500_000, tzinfo=dt.UTC)

    class Pinned(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return now

    monkeypatch.setattr("etl_resources.lake.store.dt", SimpleNamespace(datetime=Pinned, UTC=dt.UTC))
    io_manager = LakeIOManager(url=str(workdir / "lake"))
    earlier = f"{now - dt.timedelta(microseconds=1):%Y%m%dT%H%M%S%f}-ffffffff"
    io_manager.lake().fs.pipe_file(f"{workdir}/lake/numbers/_staging/date=2026-11-06/{earlier}/part-00000.parquet", b"a failed write's part")
    assets, _ = numbers_assets()

    assert dg.materialize(assets[:1], resources={"lake_io_manager": io_manager}, instance=instance, partition_key="2026-11-06").success
    assert blobs(workdir, "lake/numbers/_staging/") == []


def _complete(path: Path) -> bool:
    try:
        pl.read_parquet_schema(path)
        return True
    except Exception:
        return False


def test_a_write_removes_staging_left_by_earlier_writes_of_its_day(lake_backend, instance):
    io_manager, container = lake_backend
    lake = io_manager.lake()
    leftovers = {day: f"{lake.dataset_dir('numbers')}/_staging/date={day}/20260101T000000-0badf00d/part-00000.parquet" for day in ("2026-11-07", "2026-11-08")}
    for path in leftovers.values():
        lake.fs.pipe_file(path, b"a crashed write's part")
    assets, _ = numbers_assets()

    assert dg.materialize(assets[:1], resources={"lake_io_manager": io_manager}, instance=instance, partition_key="2026-11-07").success

    # Only the day written is cleaned: another day's staging may belong to a write still running.
    assert blobs(container, "lake/numbers/_staging/") == ["date=2026-11-08/20260101T000000-0badf00d/part-00000.parquet"]
