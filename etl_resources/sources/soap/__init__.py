"""The `soap` kind: an operation of a WSDL service, called once per day, its response's list of records read."""

from collections.abc import Iterator

import polars as pl

from etl_resources.sources.base import ExtractRun, SourceKind
from etl_resources.sources.soap.extract import extract_soap
from etl_resources.sources.soap.model import SoapSource


def extract_day(source: SoapSource, run: ExtractRun) -> Iterator[pl.DataFrame]:
    # A generator, so a WSDL that cannot be loaded fails while the day is read, where the failure is audited.
    yield from extract_soap(source, run.secrets.store(), run.window, run.log)


KIND = SourceKind(
    kind="soap",
    model=SoapSource,
    extract=extract_day,
    ui_kind=lambda source: "soap",
    reads=lambda source: f"{source.operation} of {source.wsdl}",
)
