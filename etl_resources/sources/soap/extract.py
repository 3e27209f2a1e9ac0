"""Call a SOAP operation once for the day through zeep, and turn the response's list of records into frames."""

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import polars as pl
import requests
import zeep
import zeep.exceptions
import zeep.helpers
from zeep.proxy import ServiceProxy
from zeep.wsse.username import UsernameToken

from etl_resources.secrets import SecretStore, redact
from etl_resources.sources.records import record_row
from etl_resources.sources.rest.extract import window_values
from etl_resources.sources.rest.model import BasicAuth
from etl_resources.sources.soap import strict_xsd
from etl_resources.sources.soap.model import SoapSource, WsSecurityAuth
from etl_resources.sources.soap.schema import columns, record_type, typed_frame

strict_xsd.install()

AUTH_FIX = "check `auth.username` and `auth.password` and the secrets they name"
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout)


class SoapSourceError(RuntimeError):
    """The WSDL, the service or the operation failed; cleaned of secrets, since a server may echo them back."""

    def __init__(self, message: str):
        super().__init__(redact(message))


def _problem(err: Exception) -> str:
    return f"{type(err).__name__}: {str(err)[:300]}"


def load_client(source: SoapSource, secrets: SecretStore, session: requests.Session) -> zeep.Client:
    """The WSDL loaded with the source's credentials; both the WSDL and the calls are bounded by `timeout_seconds`."""
    wsse = None
    match source.auth:
        case BasicAuth():
            session.auth = (secrets.substitute(source.auth.username), secrets.substitute(source.auth.password))
        case WsSecurityAuth():
            wsse = UsernameToken(secrets.substitute(source.auth.username), secrets.substitute(source.auth.password), use_digest=source.auth.digest)
    transport = zeep.Transport(session=session, timeout=source.timeout_seconds, operation_timeout=source.timeout_seconds)
    wsdl = secrets.substitute(source.wsdl)
    where = f"source '{source.name}', field 'wsdl': cannot load the WSDL {wsdl}"
    try:
        return zeep.Client(wsdl, transport=transport, wsse=wsse)
    except requests.HTTPError as err:
        status = err.response.status_code
        if status in (401, 403):
            raise SoapSourceError(f"source '{source.name}', field 'auth': the WSDL {wsdl} answered {status} (fix: {AUTH_FIX})") from None
        raise SoapSourceError(f"{where}: HTTP {status} (fix: check the URL)") from None
    except NETWORK_ERRORS as err:
        raise SoapSourceError(f"{where}: {_problem(err)} (fix: check the URL and that the host is reachable; `timeout_seconds` bounds the wait)") from None
    except (OSError, zeep.exceptions.Error, ValueError) as err:
        raise SoapSourceError(f"{where}: {_problem(err)} (fix: point `wsdl` at the service's WSDL, a URL or a file)") from None


def bind(client: zeep.Client, source: SoapSource) -> tuple[ServiceProxy, Any]:
    """The named (or the first) service and port, at `address` when it is set, and the port's binding."""
    services = client.wsdl.services
    name = source.service or next(iter(services), None)
    if name not in services:
        raise SoapSourceError(f"source '{source.name}', field 'service': no service {name!r} in the WSDL (fix: use one of {sorted(services)})")
    ports = services[name].ports
    port_name = source.port or next(iter(ports), None)
    if port_name not in ports:
        raise SoapSourceError(f"source '{source.name}', field 'port': no port {port_name!r} in service {name!r} (fix: use one of {sorted(ports)})")
    port = ports[port_name]
    address = source.address or port.binding_options.get("address")
    return client.create_service(str(port.binding.name), address), port.binding


def fill(value: Any, values: dict[str, str], secrets: SecretStore) -> Any:
    """Arguments with the day's values and secrets in their text, at any depth."""
    if isinstance(value, str):
        return secrets.substitute(value.format(**values))
    if isinstance(value, dict):
        return {key: fill(item, values, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, values, secrets) for item in value]
    return value


def call(service: ServiceProxy, operations: list[str], source: SoapSource, arguments: dict[str, Any]) -> Any:
    """The operation's response, or an error naming the operation, the fault, the field to fix."""
    where = f"source '{source.name}', operation {source.operation!r}"
    if source.operation not in operations:
        raise SoapSourceError(f"source '{source.name}', field 'operation': no operation {source.operation!r} in the service (fix: use one of {operations})")
    try:
        return service[source.operation](**arguments)
    except zeep.exceptions.Fault as fault:
        answer = f"the service answered with a fault, code {fault.code!r}: {fault.message}"
        if source.auth and "auth" in str(fault.code).lower():
            raise SoapSourceError(f"{where}, field 'auth': {answer} (fix: {AUTH_FIX})") from None
        raise SoapSourceError(f"{where}: {answer}") from None
    except zeep.exceptions.TransportError as err:
        if err.status_code in (401, 403):
            raise SoapSourceError(f"{where}, field 'auth': the service answered {err.status_code} (fix: {AUTH_FIX})") from None
        raise SoapSourceError(f"{where}: the service answered HTTP {err.status_code}: {str(err.message)[:300]}") from None
    except NETWORK_ERRORS as err:
        field = "address" if source.address else "wsdl"
        raise SoapSourceError(
            f"{where}, field '{field}': cannot reach the service: {_problem(err)} (fix: check `{field}` and that the host is reachable; "
            "`timeout_seconds` bounds the wait)"
        ) from None
    except strict_xsd.XsdValueError as err:
        raise SoapSourceError(
            f"{where}: the response's {err}; nothing of the day was written (fix: correct the value at the service, or its type in the WSDL)"
        ) from None
    except (TypeError, zeep.exceptions.ValidationError) as err:
        raise SoapSourceError(f"{where}, field 'arguments': {_problem(err)} (fix: give the arguments the operation's signature asks for)") from None


def select_records(source: SoapSource, body: Any) -> list[Any]:
    """The list at the dotted `records` path; an absent (nil or empty) list is an empty day, an unknown key an error."""
    walked: list[str] = []
    for part in source.records.split(".") if source.records else []:
        if body is None:
            return []
        if not isinstance(body, dict) or part not in body:
            keys = sorted(body) if isinstance(body, dict) else f"a {type(body).__name__}, not an object"
            at = ".".join(walked) or "the response"
            raise SoapSourceError(f"source '{source.name}', field 'records': no {part!r} in {at}, which holds {keys} (fix: correct the path)")
        walked.append(part)
        body = body[part]
    if body is None:
        return []
    if not isinstance(body, list):
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise SoapSourceError(
            f"source '{source.name}', field 'records': {source.records or 'the response'} is not a list of records but {keys} "
            "(fix: set `records` to the dotted path of the list, e.g. Orders.Order)"
        )
    return body


def records_frame_of(source: SoapSource, records: list[Any], operation: Any) -> pl.DataFrame:
    """The records typed as the WSDL declares them, or by their values where it does not declare a list of records."""
    xsd_type = record_type(operation, source.records)
    declared = columns(xsd_type, source.nested) if xsd_type is not None else {}
    try:
        return typed_frame([record_row(record, source.nested) for record in records], declared)
    except pl.exceptions.PolarsError as err:
        where = f"source '{source.name}', operation {source.operation!r}"
        raise SoapSourceError(f"{where}: a value does not fit the type the WSDL declares: {_problem(err)}") from None


def extract_soap(source: SoapSource, secrets: SecretStore, window: tuple[dt.datetime, dt.datetime], log: logging.Logger) -> Iterator[pl.DataFrame]:
    """The day's records in frames of `batch_size` rows, cut from one frame so every batch has the day's one schema."""
    with requests.Session() as session:
        service, binding = bind(load_client(source, secrets, session), source)
        arguments = fill(source.arguments, window_values(window), secrets)
        response = call(service, sorted(binding.all()), source, arguments)
    records = select_records(source, zeep.helpers.serialize_object(response, target_cls=dict))
    log.debug(f"source '{source.name}' {window[0].date()}: {source.operation} returned {len(records)} records")
    frame = records_frame_of(source, records, binding.get(source.operation))
    for offset in range(0, max(frame.height, 1), source.batch_size):
        yield frame.slice(offset, source.batch_size)
