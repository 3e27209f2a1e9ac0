"""The alert sensor posts failed runs and failed checks, once each, to a webhook receiver on 127.0.0.1."""

import dagster as dg
import httpx
import pytest

from etl_assets.automation.alert_sensor import failure_alerts
from etl_resources.alerts import AlertWebhook
from etl_tests.checks.test_quality_gate import DAY, events_yaml
from etl_tests.support.servers import free_port


def evaluate(platform, webhook, cursor=None):
    context = dg.build_sensor_context(
        instance=platform.instance,
        cursor=cursor,
        definitions=platform.configure(events_yaml("http://127.0.0.1:1")),
        resources={"alerts": AlertWebhook(url=webhook["url"], ui_url="http://ui.example")},
    )
    result = failure_alerts(context)
    return context.cursor, result


def test_a_failed_check_and_a_failed_run_are_posted_once(platform, api, webhook, monkeypatch):
    monkeypatch.setenv("ECOM_API_KEY", api.state.secret)
    api.state.events_per_day = 0
    quiet = platform.materialize(platform.configure(events_yaml(api.url, min_rows=1)), DAY)
    broken = platform.materialize(platform.configure(events_yaml(f"http://127.0.0.1:{free_port()}", attempts=1)), DAY, raise_on_error=False)
    assert quiet.success and not broken.success  # the failed row_count check left its run green

    cursor, _ = evaluate(platform, webhook)

    alerts = webhook["received"]
    assert [(a["kind"], a["check"]) for a in alerts] == [("asset_check", "row_count"), ("run_failure", None)]
    check_alert, run_alert = alerts
    assert check_alert["asset"] == "raw/ecom_events_raw" and check_alert["partition"] == DAY
    assert check_alert["reason"] == "0 row(s), fewer than min_rows 1"
    assert check_alert["run_url"] == f"http://ui.example/runs/{quiet.run_id}"
    assert run_alert["run_id"] == broken.run_id and run_alert["partition"] == DAY
    assert "raw/ecom_events_raw" in run_alert["asset"] and "text" in run_alert

    evaluate(platform, webhook, cursor)
    assert len(webhook["received"]) == 2


def test_an_alert_the_webhook_refused_is_sent_again(platform, api, webhook, monkeypatch):
    monkeypatch.setenv("ECOM_API_KEY", api.state.secret)
    api.state.events_per_day = 0
    platform.materialize(platform.configure(events_yaml(api.url, min_rows=1)), DAY)
    webhook["failing"]["next"] = 1

    with pytest.raises(httpx.HTTPStatusError, match="500"):
        evaluate(platform, webhook)
    cursor, _ = evaluate(platform, webhook)

    assert [a["check"] for a in webhook["received"]] == ["row_count"]
    evaluate(platform, webhook, cursor)
    assert len(webhook["received"]) == 1


def test_without_a_webhook_the_sensor_says_what_to_set(platform, monkeypatch):
    monkeypatch.setenv("ECOM_API_KEY", "x")
    defs = platform.configure(events_yaml("http://127.0.0.1:1"))
    result = failure_alerts(dg.build_sensor_context(instance=platform.instance, definitions=defs, resources={"alerts": AlertWebhook()}))
    assert "ETL_ALERT_WEBHOOK_URL" in result.skip_message


def test_a_range_run_alerts_the_bad_day_by_name_and_its_failed_run(platform, api, webhook, monkeypatch):
    """Five days in one run, one of them over the reject threshold: one check alert for that day, one run alert."""
    monkeypatch.setenv("ECOM_API_KEY", api.state.secret)
    api.state.invalid_share, api.state.invalid_share_by_day = 0.02, {"2026-11-12": 0.2}
    result = platform.materialize(platform.configure(events_yaml(api.url)), "2026-11-10", "2026-11-14", raise_on_error=False)
    assert not result.success

    evaluate(platform, webhook)

    alerts = webhook["received"]
    assert [(a["kind"], a["check"], a["partition"]) for a in alerts] == [
        ("asset_check", "reject_rate", "2026-11-12"),
        ("run_failure", None, "2026-11-10...2026-11-14"),
    ]
    assert "2026-11-12" in alerts[1]["reason"] and "1 of 5 day(s) not loaded" in alerts[1]["reason"]
