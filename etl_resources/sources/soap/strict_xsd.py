"""zeep's reading of simple values made strict, so a value the service sent never turns into NULL or False.

zeep reads an element whose text it cannot convert (`N/A` in an `xsd:decimal`, `31/02/2026` in an `xsd:date`)
as None after logging it, an empty string element as None, and any boolean other than `true`/`1` (`TRUE`,
`yes`) as False. Installed once, when the SOAP extractor is imported: a value that is not of its type fails the
day with the element and the text, an empty string element is `""`, and only `xsi:nil` or an empty element of
another type is null.
"""

import typing

from lxml import etree
from zeep.xsd.const import xsi_ns
from zeep.xsd.types import builtins
from zeep.xsd.types.simple import AnySimpleType

BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


class XsdValueError(ValueError):
    """An element's text that is not a value of its XSD type."""


def parse_xmlelement(self: AnySimpleType, xmlelement: etree._Element, schema=None, allow_none=True, context=None, schema_type=None) -> typing.Any:
    text = xmlelement.text
    if text is None:
        nil = xmlelement.get(xsi_ns("nil")) in ("true", "1")
        return "" if isinstance(self, builtins.String) and not nil else None
    try:
        return self.pythonvalue(text)
    except (TypeError, ValueError, ArithmeticError) as err:  # decimal.InvalidOperation is an ArithmeticError
        name = etree.QName(xmlelement).localname
        raise XsdValueError(f"element <{name}> holds {text!r}, which is not an xsd:{self.name or type(self).__name__} ({err})") from None


def boolean(self: builtins.Boolean, value: str) -> bool:
    try:
        return BOOLEANS[value.strip()]
    except KeyError:
        raise ValueError("a boolean is true, false, 1 or 0") from None


def install() -> None:
    AnySimpleType.parse_xmlelement = parse_xmlelement
    builtins.Boolean.pythonvalue = boolean
