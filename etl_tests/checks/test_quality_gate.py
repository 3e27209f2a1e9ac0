"""Contracts, rejects and checks end to end: the seed's ecom-events API served on 127.0.0.1, through Dagster."""

import datetime as dt
import json

import dagster as dg
import pytest

from etl_resources.lake.store import scan_partition
from etl_tests.support.api_server import invalid_events
from etl_tests.support.servers import free_port

DAY = "2026-11-10"
EVENTS = ["raw/ecom_events_raw", "rejects/ecom_events_rejects", "warehouse/shop/events"]


def events_yaml(url: str, reject_rate_max: float = 0.05, min_rows: int = 1, attempts: int = 5) -> str:
    return f"""
sources:
  - name: ecom_events
    kind: rest
    base_url: {url}
    path: /datasets/ecom_events
    params: {{start_date: "{{start_date}}", end_date: "{{end_date}}"}}
    auth: {{type: api_key, name: X-API-KEY, value: "${{ECOM_API_KEY}}"}}
    pagination: {{type: page, page_size: 50, total_path: meta.total}}
    retry: {{max_attempts: {attempts}, backoff_seconds: 0.05, max_backoff_seconds: 0.1}}
    start_date: 2026-11-01
    target: {{schema: shop, table: events}}
    contract:
      keys: [user_session]
      columns:
        event_time: {{type: timestamp, required: true}}
        event_type: {{type: string, required: true, lowercase: true, allowed: [view, cart, remove_from_cart, purchase]}}
        product_id: {{type: string}}
        price: {{type: "decimal(12,2)", min: 0}}
        user_id: {{type: string, required: true, not_empty: true}}
        user_session: {{type: string, required: true}}
    checks: {{reject_rate_max: {reject_rate_max}, min_rows: {min_rows}}}
"""


@pytest.fixture
def events_api(api, monkeypatch):
    monkeypatch.setenv("ECOM_API_KEY", api.state.secret)
    return api


def checks_of(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def test_all_valid_means_no_rejects(platform, events_api):
    events_api.state.invalid_share = 0.0
    defs = platform.configure(events_yaml(events_api.url))

    result = platform.materialize(defs, DAY)

    assert all(evaluation.passed for evaluation in result.get_asset_check_evaluations())
    assert platform.manifest(defs, "rejects/ecom_events", DAY)["rows"] == 0
    assert platform.query(defs, "SELECT COUNT(*) FROM events") == [(240,)]


def test_three_percent_invalid_passes_and_rejects_hold_exactly_those_rows(platform, events_api):
    defs = platform.configure(events_yaml(events_api.url))

    result = platform.materialize(defs, DAY)

    assert result.success
    checks = checks_of(result)
    assert checks["reject_rate"].passed and checks["row_count"].passed and checks["keys_not_null_unique"].passed
    bad = invalid_events(dt.date.fromisoformat(DAY), events_api.state)
    assert checks["reject_rate"].metadata["rows_rejected"].value == len(bad) == 7
    assert checks["reject_rate"].metadata["rows_read"].value == 240
    reasons = checks["reject_rate"].metadata["top_reasons"].value
    for reason in ("price: min: below 0", "event_type: allowed: not one of view, cart, remove_from_cart, purchase", "user_id: required: the value is missing"):
        assert reason in reasons
    assert checks["keys_not_null_unique"].metadata["duplicate_keys"].value == 0
    frame = scan_partition(platform.lake(defs), "rejects/ecom_events", DAY).collect()
    assert sorted(json.loads(r)["user_session"] for r in frame["record"]) == sorted(e["user_session"] for e in bad)
    assert frame["error_count"].to_list() == [1] * 7
    assert set(frame["partition"]) == {DAY}
    loaded = platform.query(defs, "SELECT COUNT(*), MIN(event_type), MAX(event_type) FROM events")
    assert loaded[0][0] == 233
    assert all(value == value.lower() for value in loaded[0][1:])  # normalised: lowercased


def test_twenty_percent_invalid_fails_the_check_and_the_load_never_runs(platform, events_api):
    events_api.state.invalid_share = 0.20
    defs = platform.configure(events_yaml(events_api.url))

    result = platform.materialize(defs, DAY, raise_on_error=False)

    assert not result.success
    verdict = checks_of(result)["reject_rate"]
    assert not verdict.passed and verdict.partition == DAY
    assert verdict.description == "reject rate 0.2 above reject_rate_max 0.05 (48 of 240 rows): the day is not loaded"
    assert platform.materialized_partitions(["raw", "ecom_events_raw"]) == {DAY}
    assert platform.materialized_partitions(["warehouse", "shop", "events"]) == set()
    assert platform.query(defs, "SELECT name FROM sqlite_master WHERE name = 'events'") == []
    audit = platform.query(defs, "SELECT step, status, error_message FROM etl_audit_log ORDER BY id")
    assert [row[:2] for row in audit] == [("check", "blocked"), ("load", "blocked")]
    assert audit[0][2] == verdict.description
    assert f"not loading shop.events for {DAY}: check 'reject_rate' failed for {DAY} in run {result.run_id}" in audit[1][2]


def test_the_gate_holds_when_the_load_runs_in_another_run(platform, events_api):
    events_api.state.invalid_share = 0.20
    defs = platform.configure(events_yaml(events_api.url))
    first = platform.materialize(defs, DAY, selection=EVENTS[:2], raise_on_error=False)
    assert first.success and not checks_of(first)["reject_rate"].passed  # the raw day is stored; its verdict is red

    result = platform.materialize(defs, DAY, selection=EVENTS[2:], raise_on_error=False)

    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    message = str(failure.step_failure_data.error)
    assert f"{DAY}: blocked: check 'reject_rate' failed for {DAY} in run {first.run_id}" in message
    assert platform.query(defs, "SELECT name FROM sqlite_master WHERE name = 'events'") == []
    audit = platform.query(defs, "SELECT step, status, error_message FROM etl_audit_log ORDER BY id")
    assert [row[:2] for row in audit] == [("check", "blocked"), ("load", "blocked")]
    assert "rejects/ecom_events_rejects" in audit[1][2]  # the fix names where the bad rows are


def test_a_passing_partition_loads_in_a_separate_run(platform, events_api):
    defs = platform.configure(events_yaml(events_api.url))
    platform.materialize(defs, DAY, selection=EVENTS[:2])

    result = platform.materialize(defs, DAY, selection=EVENTS[2:])

    assert result.success
    assert platform.query(defs, "SELECT COUNT(*) FROM events") == [(233,)]


def test_a_lake_day_with_no_verdict_under_the_new_key_loads_once_raw_is_materialized_again(platform, events_api):
    """Upgrading from keys without the _raw suffix: the day's files stay in the lake, but its verdicts are in
    the old key's history, which the load does not read."""
    defs = platform.configure(events_yaml(events_api.url))
    # Another instance stands for the history under the old keys: this one holds none for the day.
    with dg.instance_for_test() as before_upgrade:
        dg.materialize(
            list(defs.assets),
            resources=defs.resources,
            instance=before_upgrade,
            partition_key=DAY,
            selection=[dg.AssetKey.from_user_string(key) for key in EVENTS[:2]],
        )
    assert platform.manifest(defs, "raw/ecom_events", DAY)["rows"] == 233

    refused = platform.materialize(defs, DAY, selection=EVENTS[2:], raise_on_error=False)
    platform.materialize(defs, DAY, selection=EVENTS[:2])
    loaded = platform.materialize(defs, DAY, selection=EVENTS[2:])

    failure = next(event for event in refused.all_events if event.event_type_value == "STEP_FAILURE")
    assert f"{DAY}: blocked: raw/ecom_events_raw has no materialization for {DAY}, so no verdict of its checks" in str(failure.step_failure_data.error)
    assert loaded.success and platform.query(defs, "SELECT COUNT(*) FROM events") == [(233,)]


def test_api_down_past_the_retry_budget_fails_audits_and_writes_nothing(platform, events_api):
    defs = platform.configure(events_yaml(f"http://127.0.0.1:{free_port()}", attempts=3))

    result = platform.materialize(defs, DAY, raise_on_error=False)

    assert not result.success
    lake = platform.lake(defs)
    assert not lake.fs.exists(lake.dataset_dir("raw/ecom_events") + f"/date={DAY}")
    audit = platform.query(defs, "SELECT step, status, error_message FROM etl_audit_log")
    assert [(step, status) for step, status, _ in audit] == [("extract", "failure")]
    assert "source 'ecom_events': http://127.0.0.1:" in audit[0][2] and "/datasets/ecom_events?start_date=" in audit[0][2]
    assert "gave up after 3 attempt(s)" in audit[0][2]


def test_a_wrong_api_key_fails_fast_with_a_clear_error(platform, events_api, monkeypatch):
    monkeypatch.setenv("ECOM_API_KEY", "not-the-key")
    defs = platform.configure(events_yaml(events_api.url))

    result = platform.materialize(defs, DAY, raise_on_error=False)

    assert not result.success
    assert len(events_api.state.requests) == 1
    audit = platform.query(defs, "SELECT error_message FROM etl_audit_log")[0][0]
    assert "401 Unauthorized" in audit and "check the credentials and secrets in `auth`" in audit and "not-the-key" not in audit


@pytest.mark.parametrize(("min_rows", "passed"), [(0, True), (1, False)])
def test_an_empty_day_is_an_empty_partition_judged_by_min_rows(platform, events_api, min_rows, passed):
    events_api.state.events_per_day = 0
    defs = platform.configure(events_yaml(events_api.url, min_rows=min_rows))

    result = platform.materialize(defs, DAY, raise_on_error=False)

    assert platform.manifest(defs, "raw/ecom_events", DAY)["rows"] == 0
    assert checks_of(result)["row_count"].passed is passed
    assert checks_of(result)["reject_rate"].passed
    assert result.success  # row_count is not blocking: the empty day still loads
    assert platform.query(defs, "SELECT COUNT(*) FROM events") == [(0,)]


def test_duplicate_keys_fail_the_keys_check(platform, events_api):
    defs = platform.configure(events_yaml(events_api.url).replace("keys: [user_session]", "keys: [event_type]"))

    result = platform.materialize(defs, DAY)

    keys = checks_of(result)["keys_not_null_unique"]
    assert not keys.passed and result.success  # not blocking
    assert keys.metadata["duplicate_keys"].value == 233 - 4  # four event types among the valid rows
    assert keys.description == f"0 null and {233 - 4} duplicate key(s)" and keys.partition == DAY
