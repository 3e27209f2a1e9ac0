"""A real SOAP 1.1 service on 127.0.0.1 for the `soap` kind's tests: a spyne application served by wsgiref.

Operations (namespace `urn:etl:orders`, WSDL at `/?wsdl`):
    GetOrders(from_time, to_time)  the orders placed in [from_time, to_time): {day_count, Orders: {Order: [...]}}
    Broken()                       always a fault, code `Server.InventoryOffline`, with hostile text in its message

`ORDERS` is what the service holds. `auth` (None, "basic" or "ws_security") makes every request prove
`username`/`password`: HTTP basic auth on every request (the WSDL too, unless `open_wsdl`), or a WS-Security
UsernameToken (plain or digest) in the envelope of every call; the token types seen are kept in `token_types`.
"""

import base64
import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal as D
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from lxml import etree
from spyne import Application, Array, ComplexModel, DateTime, Decimal, Integer, Long, ServiceBase, Unicode, rpc
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

NAMESPACE = "urn:etl:orders"
HOSTILE = "Zoë 東京 😀 100% 'x' \"y\" back\\slash"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
UTC = dt.UTC
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def _order(order_id: int, amount: str, placed_at: dt.datetime, customer: str, coupon: str | None, items: list[tuple[str, int]]) -> dict:
    return {
        "order_id": order_id,
        "big_id": 2**53 + order_id,
        "amount": D(amount),
        "placed_at": placed_at,
        "CustomerName": customer,
        "coupon": coupon,
        "items": [{"sku": sku, "quantity": quantity} for sku, quantity in items],
    }


# 2026-11-03 has no orders; one of 2026-11-02's is a refund (a negative amount).
ORDERS = [
    _order(1, "12345678901234.5678", dt.datetime(2026, 11, 1, 0, 0, 0, 1, tzinfo=UTC), HOSTILE, None, [("A-1", 2), ("B-2", 1)]),
    _order(2, "0.10", dt.datetime(2026, 11, 1, 12, 30, 15, 123456, tzinfo=PLUS_TWO), "plain", "10%OFF", []),
    _order(3, "99.9999", dt.datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=UTC), 'O\'Brien "quoted"', "", [("Zoë", 3)]),
    _order(4, "-5.00", dt.datetime(2026, 11, 2, 8, 0, 0, 500000, tzinfo=UTC), "refund", None, [("A-1", -1)]),
    _order(5, "7", dt.datetime(2026, 11, 2, 9, 15, 0, 42, tzinfo=UTC), "東京", None, [("C-3", 9)]),
]


class Item(ComplexModel):
    __namespace__ = NAMESPACE
    sku = Unicode
    quantity = Integer


class Order(ComplexModel):
    __namespace__ = NAMESPACE
    order_id = Integer
    big_id = Long
    amount = Decimal
    placed_at = DateTime
    CustomerName = Unicode
    coupon = Unicode
    items = Array(Item)


class OrdersReply(ComplexModel):
    __namespace__ = NAMESPACE
    day_count = Integer
    Orders = Array(Order)


def orders_between(start: dt.datetime, end: dt.datetime) -> list[dict]:
    return [order for order in ORDERS if start <= order["placed_at"] < end]


class OrderService(ServiceBase):
    @rpc(DateTime, DateTime, _returns=OrdersReply)
    def GetOrders(ctx, from_time, to_time):
        found = orders_between(from_time, to_time)
        orders = [Order(**{**order, "items": [Item(**item) for item in order["items"]]}) for order in found]
        return OrdersReply(day_count=len(orders), Orders=orders)

    @rpc(_returns=Unicode)
    def Broken(ctx):
        raise Fault(faultcode="Server.InventoryOffline", faultstring=f"inventory is offline: {HOSTILE}")


def fault_envelope(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:wsse="{WSSE}"><soap:Body><soap:Fault><faultcode>{code}</faultcode><faultstring>{message}</faultstring>'
        "</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


@dataclass
class SoapServer:
    url: str
    auth: str | None = None
    open_wsdl: bool = False
    username: str = "etl"
    password: str = "s3cr%t'pw"
    token_types: list[str] = field(default_factory=list)

    @property
    def wsdl(self) -> str:
        return f"{self.url}/?wsdl"

    def reset(self) -> None:
        self.auth, self.open_wsdl = None, False
        self.token_types.clear()

    def basic_ok(self, header: str) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"

    def token_ok(self, envelope: bytes) -> bool:
        """A UsernameToken with the user's password, as text or as base64(sha1(nonce + created + password))."""
        token = etree.fromstring(envelope).find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            return False
        password = token.find(f"{{{WSSE}}}Password")
        kind = password.get("Type", "") if password is not None else ""
        self.token_types.append("digest" if kind == DIGEST else "text")
        if token.findtext(f"{{{WSSE}}}Username") != self.username or password is None:
            return False
        if kind != DIGEST:
            return password.text == self.password
        nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
        created = (token.findtext(f"{{{WSU}}}Created") or "").encode()
        return password.text == base64.b64encode(hashlib.sha1(nonce + created + self.password.encode()).digest()).decode()


def guarded(app, server: SoapServer):
    """The WSGI app behind the server's current auth check."""

    def wsgi(environ, start_response):
        checked = environ["REQUEST_METHOD"] == "POST" or not server.open_wsdl
        if server.auth == "basic" and checked and not server.basic_ok(environ.get("HTTP_AUTHORIZATION", "")):
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="orders"'), ("Content-Type", "text/plain")])
            return [b"unauthorized"]
        if server.auth == "ws_security" and environ["REQUEST_METHOD"] == "POST":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            if not server.token_ok(body):
                start_response("500 Internal Server Error", [("Content-Type", "text/xml; charset=utf-8")])
                return [fault_envelope("wsse:FailedAuthentication", "The security token could not be authenticated or authorized")]
            environ["wsgi.input"] = _Body(body)
        return app(environ, start_response)

    return wsgi


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, size: int = -1) -> bytes:
        chunk, self.data = (self.data, b"") if size < 0 else (self.data[:size], self.data[size:])
        return chunk


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextmanager
def soap_server() -> Iterator[SoapServer]:
    # spyne logs every fault it sends with a traceback; the tests assert on what the client sees instead.
    logging.getLogger("spyne").setLevel(logging.CRITICAL)
    app = Application([OrderService], tns=NAMESPACE, in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    state = SoapServer(url="")
    httpd = make_server("127.0.0.1", 0, guarded(WsgiApplication(app), state), server_class=_ThreadingServer, handler_class=_Quiet)
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
