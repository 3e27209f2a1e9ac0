"""Reverse ETL to Salesforce: a week of the ecom-events API loaded into the warehouse, aggregated per customer by
a query and upserted by external ID. Salesforce cannot run here: a local server on 127.0.0.1
(`salesforce_server.py`) speaks the Bulk API 2.0 subset the client uses, with failures injected."""

from collections import deque

import pytest

from etl_resources.config.sources_file import SourcesConfigError
from etl_tests.checks.test_quality_gate import EVENTS, events_yaml
from etl_tests.support.salesforce_server import SalesforceServer, SalesforceState

WEEK = "2026-11-09"  # a Monday; the week is 2026-11-09 .. 2026-11-15
EXPORT = "salesforce/customer_weekly"
QUERY = (
    "SELECT user_id AS Customer_Key__c, COUNT(*) AS Events__c, SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS Purchases__c "
    "FROM events WHERE _partition >= :start AND _partition < :end GROUP BY user_id ORDER BY user_id"
)


def export_yaml(api_url: str, salesforce_url: str) -> str:
    return (
        events_yaml(api_url)
        + f"""
exports:
  - name: customer_weekly
    query: "{QUERY}"
    reads: [ecom_events]
    object: Customer_Weekly_Metric__c
    external_id_field: Customer_Key__c
    start_date: 2026-11-02
    batch_size: 500
    connection:
      domain: {salesforce_url}
      client_id: etl-app
      client_secret: "${{SF_CLIENT_SECRET}}"
      username: etl@example.com
      password: "${{SF_PASSWORD}}"
      security_token: "${{SF_TOKEN}}"
"""
    )


@pytest.fixture
def salesforce(monkeypatch):
    server = SalesforceServer(SalesforceState())
    monkeypatch.setenv("SF_CLIENT_SECRET", "app-secret")
    monkeypatch.setenv("SF_PASSWORD", "pw")
    monkeypatch.setenv("SF_TOKEN", "tok")
    yield server
    server.close()


@pytest.fixture
def loaded_week(platform, api, salesforce, monkeypatch):
    """The week's events in the warehouse, and the rows the export's query gives for it."""
    monkeypatch.setenv("ECOM_API_KEY", api.state.secret)
    api.state.invalid_share = 0.0
    defs = platform.configure(export_yaml(api.url, salesforce.url))
    assert platform.materialize(defs, WEEK, "2026-11-15", selection=EVENTS).success
    expected = platform.query(defs, QUERY, start=WEEK, end="2026-11-16")
    assert len(expected) > 80
    return defs, expected


def audit(platform, defs) -> list[tuple]:
    return platform.query(
        defs, "SELECT source_name, partition_key, step, status, rows_loaded, error_message FROM etl_audit_log WHERE step = 'export' ORDER BY id"
    )


def test_a_week_is_upserted_by_external_id_and_audited(platform, salesforce, loaded_week):
    defs, expected = loaded_week

    result = platform.materialize(defs, WEEK, selection=[EXPORT])
    platform.materialize(defs, WEEK, selection=[EXPORT])

    records = salesforce.state.records["Customer_Weekly_Metric__c"]
    assert sorted(records) == sorted(row[0] for row in expected)
    assert {key: (int(r["Events__c"]), int(r["Purchases__c"])) for key, r in records.items()} == {row[0]: (row[1], row[2]) for row in expected}
    metadata = result.asset_materializations_for_node("salesforce__customer_weekly")[0].metadata
    assert (metadata["sent"].value, metadata["succeeded"].value, metadata["failed"].value) == (len(expected), len(expected), 0)
    assert len(metadata["jobs"].value) == -(-len(expected) // 500) > 1
    assert [row[:5] for row in audit(platform, defs)] == [("customer_weekly", WEEK, "export", "success", len(expected))] * 2


def test_failed_records_pass_under_the_threshold_and_fail_the_run_over_it(platform, salesforce, loaded_week):
    defs, expected = loaded_week
    keys = [row[0] for row in expected]
    salesforce.state.failing_ids = set(keys[: len(keys) // 20])

    within = platform.materialize(defs, WEEK, selection=[EXPORT])
    salesforce.state.failing_ids = set(keys[: len(keys) // 4])
    over = platform.materialize(defs, WEEK, selection=[EXPORT], raise_on_error=False)

    metadata = within.asset_materializations_for_node("salesforce__customer_weekly")[0].metadata
    assert metadata["failed"].value == len(keys) // 20 and metadata["failure_samples"].value[0]["external_id"] == keys[0]
    assert not over.success
    failure = next(event for event in over.all_events if event.event_type_value == "STEP_FAILURE")
    assert f"{len(keys) // 4:,} of {len(keys):,} records" in str(failure.step_failure_data.error) and "rejected " + keys[0] in str(
        failure.step_failure_data.error
    )
    assert [row[3] for row in audit(platform, defs)] == ["success", "failure"]


def test_server_errors_are_retried_and_then_succeed(platform, salesforce, loaded_week):
    defs, expected = loaded_week
    salesforce.state.faults = deque([503, 502])

    result = platform.materialize(defs, WEEK, selection=[EXPORT])

    assert result.success and len(salesforce.state.records["Customer_Weekly_Metric__c"]) == len(expected)
    assert salesforce.state.requests[:3] == ["POST /services/oauth2/token"] * 3


def test_bad_credentials_fail_at_sign_in_with_the_fix_and_send_nothing(platform, salesforce, loaded_week, monkeypatch):
    defs, _ = loaded_week
    monkeypatch.setenv("SF_PASSWORD", "not-the-password")

    result = platform.materialize(defs, WEEK, selection=[EXPORT], raise_on_error=False)

    assert not result.success
    error = str(next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE").step_failure_data.error)
    assert "sign-in" in error and "invalid_grant" in error and "fix: check connection.username" in error
    assert salesforce.state.jobs == {}
    assert "not-the-password" not in error
    ((step, status, message),) = [row[2:4] + row[5:] for row in audit(platform, defs)]
    assert (step, status) == ("export", "failure") and "invalid_grant" in message and "not-the-password" not in message


def test_a_week_with_a_failed_blocking_check_is_not_sent(platform, api, salesforce, monkeypatch):
    monkeypatch.setenv("ECOM_API_KEY", api.state.secret)
    api.state.invalid_share = 0.2
    defs = platform.configure(export_yaml(api.url, salesforce.url))
    platform.materialize(defs, WEEK, "2026-11-15", selection=EVENTS, raise_on_error=False)

    result = platform.materialize(defs, WEEK, selection=[EXPORT], raise_on_error=False)

    assert not result.success
    error = str(next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE").step_failure_data.error)
    assert f"not sending week {WEEK}" in error and "reject_rate" in error
    assert salesforce.state.requests == []
    assert [row[2:4] for row in audit(platform, defs)] == [("export", "blocked")]


def test_an_exports_missing_secret_fails_when_the_definitions_load(platform, api, salesforce, monkeypatch):
    monkeypatch.setenv("ECOM_API_KEY", api.state.secret)
    monkeypatch.delenv("SF_TOKEN")

    with pytest.raises(
        SourcesConfigError, match="export 'customer_weekly' \\(exports\\[0\\]\\), field 'connection.security_token': secret 'SF_TOKEN' not found"
    ):
        platform.configure(export_yaml(api.url, salesforce.url))
