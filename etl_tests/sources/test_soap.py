"""The `soap` kind against a real SOAP 1.1 service (spyne, on 127.0.0.1): a day's call, its records in the lake and
the warehouse cell by cell, contracts and checks, auth, faults and the errors a user meets."""

import datetime as dt
import json
import logging
import re
import socket
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from lxml import etree
from zeep.xsd.types import builtins

from etl_resources.config.sources_file import SourcesConfigError, load_sources
from etl_resources.lake.store import scan_partition
from etl_resources.secrets import SecretStore
from etl_resources.sources.soap.extract import SoapSourceError, call, extract_soap
from etl_resources.sources.soap.model import SoapSource
from etl_resources.sources.soap.strict_xsd import XsdValueError
from etl_tests.support.soap_server import HOSTILE, ORDERS, SoapServer, orders_between

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]  # three orders, two (one a refund), none
LOG = logging.getLogger("test")
FAULT = f"the service answered with a fault, code 'soap11env:Server.InventoryOffline': inventory is offline: {HOSTILE}"
TABLE = 'SELECT order_id, big_id, amount, placed_at, "CustomerName", coupon, items, _partition FROM orders ORDER BY order_id'


@pytest.fixture
def soap(soap_service: SoapServer, monkeypatch) -> SoapServer:
    monkeypatch.setenv("SOAP_PASSWORD", soap_service.password)
    soap_service.reset()
    yield soap_service
    soap_service.reset()


def window(day: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def orders_yaml(soap: SoapServer, extra: str = "", amount_rule: str = "") -> str:
    return f"""
sources:
  - name: orders
    kind: soap
    wsdl: {soap.wsdl}
    operation: GetOrders
    arguments: {{from_time: "{{start}}", to_time: "{{end}}"}}
    records: Orders.Order
    timeout_seconds: 5
    start_date: 2026-11-01
    target: {{schema: shop, table: orders}}
    contract:
      keys: [order_id]
      extra_columns: keep
      columns:
        order_id: {{type: int, required: true}}
        amount: {{type: "decimal(20,4)"{amount_rule}}}
        placed_at: {{type: timestamp, required: true}}
    checks: {{min_rows: 0}}
{extra}"""


def source(soap: SoapServer, **fields) -> SoapSource:
    config = {
        "name": "orders",
        "kind": "soap",
        "wsdl": soap.wsdl,
        "operation": "GetOrders",
        "arguments": {"from_time": "{start}", "to_time": "{end}"},
        "records": "Orders.Order",
        "timeout_seconds": 5,
        "start_date": "2026-11-01",
        "target": {"table": "orders"},
    }
    return SoapSource.model_validate(config | fields)


def extract(src: SoapSource, workdir: Path, day: str = DAYS[0]) -> list:
    return list(extract_soap(src, SecretStore(workdir / "secrets.toml"), window(day), LOG))


def failure(src: SoapSource, workdir: Path) -> str:
    with pytest.raises(SoapSourceError) as raised:
        extract(src, workdir)
    return str(raised.value)


def expected_items(order: dict) -> str | None:
    """`items` as the lake holds it: the XML's <items><Item>… as JSON; an empty list is an empty element, so null."""
    return json.dumps({"Item": order["items"]}, ensure_ascii=False) if order["items"] else None


def test_days_land_in_the_lake_and_the_warehouse_cell_by_cell(platform, soap):
    defs = platform.configure(orders_yaml(soap))

    result = platform.materialize(defs, DAYS[0], DAYS[-1])

    assert result.success
    rate = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == "reject_rate"}
    assert {day: e.passed for day, e in rate.items()} == dict.fromkeys(DAYS, True)
    assert [rate[day].metadata["rows_read"].value for day in DAYS] == [3, 2, 0]
    schema = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == "schema_unchanged"}
    assert {day: e.passed for day, e in schema.items()} == dict.fromkeys(DAYS, True)  # the empty day too
    lake = platform.lake(defs)
    for day in DAYS:
        frame = scan_partition(lake, "raw/orders", day).collect().sort("order_id")
        expected = orders_between(*window(day))
        assert frame.height == len(expected)
        for row, order in zip(frame.iter_rows(named=True), expected, strict=True):
            assert row["order_id"] == order["order_id"] and row["big_id"] == order["big_id"] == 2**53 + order["order_id"]
            assert row["amount"] == order["amount"]  # a Decimal, exact: 12345678901234.5678 has 18 digits
            assert row["placed_at"] == order["placed_at"] and row["placed_at"].utcoffset() == dt.timedelta(0)
            assert row["CustomerName"] == order["CustomerName"] and row["coupon"] == order["coupon"]
            assert row["items"] == expected_items(order)
    assert scan_partition(lake, "raw/orders", DAYS[0]).collect()["CustomerName"].to_list()[0] == HOSTILE
    warehouse = platform.query(defs, TABLE)
    assert len(warehouse) == len(ORDERS)
    for row, order in zip(warehouse, ORDERS, strict=True):
        order_id, big_id, amount, placed_at, customer, coupon, items, partition = row
        assert (order_id, big_id, customer, items) == (order["order_id"], order["big_id"], order["CustomerName"], expected_items(order))
        assert coupon == order["coupon"]
        assert str(amount) == str(order["amount"].quantize(order["amount"].__class__("0.0001")))
        assert dt.datetime.fromisoformat(str(placed_at)).replace(tzinfo=dt.UTC) == order["placed_at"]
        assert partition == order["placed_at"].astimezone(dt.UTC).date().isoformat()


def test_a_rerun_of_the_days_is_identical(platform, soap):
    defs = platform.configure(orders_yaml(soap))
    platform.materialize(defs, DAYS[0], DAYS[-1])
    lake = platform.lake(defs)
    first = {day: scan_partition(lake, "raw/orders", day).collect().sort("order_id") for day in DAYS}
    table = platform.query(defs, TABLE)

    assert platform.materialize(defs, DAYS[0], DAYS[-1]).success

    for day in DAYS:
        assert scan_partition(lake, "raw/orders", day).collect().sort("order_id").equals(first[day])
    assert platform.query(defs, TABLE) == table


def test_a_day_breaking_the_contract_fails_its_check_and_only_that_day_is_refused(platform, soap):
    defs = platform.configure(orders_yaml(soap, amount_rule=", min: 0"))

    result = platform.materialize(defs, DAYS[0], DAYS[1], raise_on_error=False)

    assert not result.success
    rate = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == "reject_rate"}
    assert rate[DAYS[0]].passed and not rate[DAYS[1]].passed
    assert rate[DAYS[1]].metadata["rows_rejected"].value == 1
    assert "amount: min: below 0" in rate[DAYS[1]].metadata["top_reasons"].value
    rejects = scan_partition(platform.lake(defs), "rejects/orders", DAYS[1]).collect()
    assert [json.loads(record)["order_id"] for record in rejects["record"]] == [4]
    assert platform.query(defs, "SELECT order_id FROM orders ORDER BY order_id") == [(1,), (2,), (3,)]


def test_columns_are_typed_as_the_wsdl_declares_them_on_every_day(soap, workdir):
    """Not from the day's values: a nil in every record, or no record at all, keeps the declared type."""
    [full], [refunds], [empty] = (extract(source(soap), workdir, day) for day in DAYS)
    declared = {"order_id": pl.Int64, "big_id": pl.Int64, "placed_at": pl.Datetime("us", "UTC"), "CustomerName": pl.String, "coupon": pl.String}
    for frame in (full, refunds, empty):
        assert {name: frame.schema[name] for name in declared} == declared and frame.schema["items"] == pl.String
    assert refunds["coupon"].to_list() == [None, None] and empty.height == 0
    # xsd:decimal has no scale zeep keeps, so the values give it: exact either way.
    assert full["amount"].to_list() == [order["amount"] for order in ORDERS[:3]] and "amount" not in empty.columns


def test_flatten_names_nested_fields_parent_child(soap, workdir):
    [frame] = extract(source(soap, nested="flatten"), workdir)
    assert frame.schema["items_Item"] == pl.String and "items" not in frame.columns
    assert json.loads(frame["items_Item"][0]) == ORDERS[0]["items"]


def test_a_fault_names_the_source_the_operation_its_code_and_message(soap, workdir):
    message = failure(source(soap, operation="Broken", arguments={}), workdir)

    assert message == f"source 'orders', operation 'Broken': {FAULT}"


def test_an_unknown_operation_lists_the_service_operations(soap, workdir):
    message = failure(source(soap, operation="GetOrderz"), workdir)

    assert message == "source 'orders', field 'operation': no operation 'GetOrderz' in the service (fix: use one of ['Broken', 'GetOrders'])"


def test_a_missing_records_path_shows_the_keys_there(soap, workdir):
    assert "field 'records': no 'Ordr' in Orders, which holds ['Order']" in failure(source(soap, records="Orders.Ordr"), workdir)
    message = failure(source(soap, records=None), workdir)
    assert "field 'records': the response is not a list of records but ['Orders', 'day_count']" in message


def test_an_unknown_service_or_port_lists_those_there_are(soap, workdir):
    assert "field 'service': no service 'Orders' in the WSDL (fix: use one of ['OrderService'])" in failure(source(soap, service="Orders"), workdir)
    assert "field 'port': no port 'Soap12' in service 'OrderService' (fix: use one of ['Application'])" in failure(source(soap, port="Soap12"), workdir)


def test_a_file_that_is_not_a_wsdl_names_the_field(workdir):
    (workdir / "orders.wsdl").write_text("not xml at all: 100% 'x'")
    message = failure(SoapSource.model_validate(source_config(str(workdir / "orders.wsdl"))), workdir)
    assert message.startswith(f"source 'orders', field 'wsdl': cannot load the WSDL {workdir / 'orders.wsdl'}: XMLSyntaxError")
    assert "(fix: point `wsdl` at the service's WSDL, a URL or a file)" in message


def test_wrong_arguments_name_the_field(soap, workdir):
    assert "field 'arguments'" in failure(source(soap, arguments={"from": "{start}"}), workdir)


@pytest.mark.parametrize(
    ("style", "auth"),
    [
        ("basic", {"type": "basic", "username": "etl", "password": "${SOAP_PASSWORD}"}),
        ("ws_security", {"type": "ws_security", "username": "etl", "password": "${SOAP_PASSWORD}"}),
        ("ws_security", {"type": "ws_security", "username": "etl", "password": "${SOAP_PASSWORD}", "digest": True}),
    ],
)
def test_each_auth_style_passes_with_the_secret_and_fails_naming_auth_without_it(soap, workdir, monkeypatch, style, auth):
    soap.auth = style
    frames = extract(source(soap, auth=auth), workdir)
    assert frames[0]["order_id"].to_list() == [1, 2, 3]
    if style == "ws_security":
        assert soap.token_types == ["digest" if auth.get("digest") else "text"]

    monkeypatch.setenv("SOAP_PASSWORD", "wrong-pw")
    message = failure(source(soap, auth=auth), workdir)

    assert message.startswith("source 'orders'") and "field 'auth'" in message and "wrong-pw" not in message
    assert message.endswith("(fix: check `auth.username` and `auth.password` and the secrets they name)")
    if style == "ws_security":
        assert "code 'wsse:FailedAuthentication'" in message


def test_a_call_refused_with_401_names_the_auth_fields(soap, workdir):
    """A service whose WSDL is open and whose endpoint asks for basic auth."""
    soap.auth, soap.open_wsdl = "basic", True

    message = failure(source(soap), workdir)

    assert message.startswith("source 'orders', operation 'GetOrders', field 'auth': the service answered 401")


def test_a_failed_day_shows_the_fault_in_the_run_and_the_audit_log(platform, soap):
    call = 'operation: GetOrders\n    arguments: {from_time: "{start}", to_time: "{end}"}'
    assert call in orders_yaml(soap)
    defs = platform.configure(orders_yaml(soap, "    step_retries: {max_retries: 0}\n").replace(call, "operation: Broken"))

    result = platform.materialize(defs, DAYS[0], raise_on_error=False)

    assert not result.success
    expected = f"source 'orders', operation 'Broken': {FAULT}"
    audit = platform.query(defs, "SELECT step, status, error_message FROM etl_audit_log")
    assert [(step, status) for step, status, _ in audit] == [("extract", "failure")] and expected in audit[0][2]
    assert platform.manifest(defs, "raw/orders", DAYS[0]) is None


def test_an_unreachable_host_fails_fast_naming_the_wsdl(workdir):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    message = failure(SoapSource.model_validate(source_config(f"http://127.0.0.1:{port}/?wsdl")), workdir)
    assert message.startswith(f"source 'orders', field 'wsdl': cannot load the WSDL http://127.0.0.1:{port}/?wsdl: ConnectionError")


def test_a_silent_host_is_bounded_by_the_timeout(workdir):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/?wsdl"
        started = dt.datetime.now()
        message = failure(SoapSource.model_validate(source_config(url) | {"timeout_seconds": 0.5}), workdir)
    assert (dt.datetime.now() - started).total_seconds() < 5
    assert "field 'wsdl'" in message and "ReadTimeout" in message and "`timeout_seconds` bounds the wait" in message


def test_an_unreachable_endpoint_names_the_address(soap, workdir):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    message = failure(source(soap, address=f"http://127.0.0.1:{port}/"), workdir)
    assert message.startswith("source 'orders', operation 'GetOrders', field 'address': cannot reach the service: ConnectionError")


def source_config(wsdl: str) -> dict:
    return {"name": "orders", "kind": "soap", "wsdl": wsdl, "operation": "GetOrders", "start_date": "2026-11-01", "target": {"table": "orders"}}


def test_a_bad_auth_type_fails_when_the_file_loads(tmp_path):
    entry = source_config("https://erp.example.net/orders?wsdl") | {"auth": {"type": "ntlm", "username": "etl", "password": "x"}}
    path = tmp_path / "sources.yaml"
    path.write_text(json.dumps({"sources": [entry]}))

    expected = "source 'orders' (sources[0]), field 'auth.type': unknown type 'ntlm'; supported: 'basic', 'ws_security'"
    with pytest.raises(SourcesConfigError, match=re.escape(expected)):
        load_sources(path, None)


@pytest.mark.parametrize(
    ("xsd_type", "xml", "value"),
    [
        ("String", "<coupon/>", ""),
        ("String", '<coupon xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>', None),
        ("Decimal", "<amount/>", None),
        ("Decimal", "<amount>12345678901234.5678</amount>", Decimal("12345678901234.5678")),
        ("Boolean", "<paid>true</paid>", True),
        ("Boolean", "<paid>0</paid>", False),
    ],
)
def test_zeep_reads_simple_values_strictly(xsd_type, xml, value):
    """zeep's own reading turns an empty string into None and `TRUE` into False; the extractor's does neither."""
    assert getattr(builtins, xsd_type)().parse_xmlelement(etree.fromstring(xml)) == value


@pytest.mark.parametrize(("xsd_type", "xml"), [("Decimal", "<amount>N/A</amount>"), ("Boolean", "<paid>TRUE</paid>"), ("Date", "<day>31/02/2026</day>")])
def test_a_value_that_is_not_of_its_type_is_an_error_naming_the_element_not_a_null(xsd_type, xml):
    with pytest.raises(XsdValueError, match=rf"element <\w+> holds '{re.escape(etree.fromstring(xml).text)}', which is not an xsd:"):
        getattr(builtins, xsd_type)().parse_xmlelement(etree.fromstring(xml))


def test_a_response_value_not_of_its_type_fails_the_day_naming_the_source_operation_and_element(soap_service):
    def get_orders(**arguments):
        return builtins.Decimal().parse_xmlelement(etree.fromstring("<amount>N/A</amount>"))

    with pytest.raises(SoapSourceError) as caught:
        call({"GetOrders": get_orders}, ["GetOrders"], source(soap_service), {})
    assert str(caught.value) == (
        "source 'orders', operation 'GetOrders': the response's element <amount> holds 'N/A', which is not an xsd:decimal "
        "([<class 'decimal.ConversionSyntax'>]); nothing of the day was written (fix: correct the value at the service, or its type in the WSDL)"
    )
