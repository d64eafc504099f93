"""The AsyncAPI 3.0 document of a server: validated against the published AsyncAPI 3.0 schema
(the @asyncapi/specs npm package, installed by scripts/test), its payload schemas agreeing
with what the server accepts, `stelar asyncapi` and its TypeScript declarations compiled by tsc,
and stelar-ws serving /asyncapi.json."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal, TypedDict

import attrs
import jsonschema
import pytest

from stelar_core import StelarServer
from stelar_core.asyncapi import document
from stelar_core.plugin_api import hookimpl
from stelar_core.testing import connect_client

TOOLS = Path(__file__).parent / "js" / "node_modules"
ASYNCAPI_SCHEMA = TOOLS / "@asyncapi" / "specs" / "schemas" / "3.0.0-without-$id.json"
TSC = TOOLS / ".bin" / "tsc"
STELAR_DTS = Path(__file__).parents[1] / "plugins" / "stelar-ws" / "stelar_ws" / "static" / "stelar.d.ts"


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


@attrs.frozen
class Order:
    """An order to trade."""

    symbol: str = attrs.field(validator=attrs.validators.max_len(8))
    quantity: int = attrs.field(validator=attrs.validators.gt(0))
    side: Side = Side.BUY
    limit: float | None = None


@dataclasses.dataclass
class Fill:
    order_id: str
    prices: list[float]
    venue: Literal["lse", "nyse"] = "lse"


class Tick(TypedDict):
    symbol: str
    price: float


def trading_server(**options) -> StelarServer:
    server = StelarServer(**options)

    @server.on("order")
    def order(ctx, order: Order):
        """Place an order."""

    @server.on_ack("place")
    def place(ctx, order: Order) -> Fill:
        return Fill("1", [1.0])

    @server.on("anything")
    def anything(ctx):
        pass

    @server.on("chat:room")  # a name AsyncAPI keys cannot hold as it is
    def chat(ctx, text: str):
        pass

    server.emits("tick", Tick, description="A price changed.")
    return server


@pytest.fixture(scope="module")
def asyncapi_schema():
    assert ASYNCAPI_SCHEMA.exists(), "scripts/test installs @asyncapi/specs (npm ci in tests/js)"
    return json.loads(ASYNCAPI_SCHEMA.read_text())


def test_the_document_validates_against_the_asyncapi_3_schema(asyncapi_schema):
    doc = document(trading_server(transports=["memory"]), title="trading", servers=["wss://example.com/live"])
    jsonschema.Draft7Validator(asyncapi_schema).validate(doc)
    assert doc["asyncapi"] == "3.0.0" and doc["servers"] == {
        "wss": {"host": "example.com", "protocol": "wss", "pathname": "/live"}
    }
    operations = doc["operations"]
    assert operations["receive.order"]["action"] == "receive"
    assert operations["request.place"]["reply"]["messages"] == [
        {"$ref": "#/channels/stelar/messages/place.reply"}
    ]
    assert operations["send.tick"]["action"] == "send"
    messages = doc["components"]["messages"]
    assert messages["order"]["summary"] == "Place an order." and messages["anything"]["payload"] == {}
    assert messages["chat_room"]["name"] == "chat:room"
    assert messages["tick.sent"]["summary"] == "A price changed."


def test_rooms_with_history_add_the_history_request_and_the_room_policies(asyncapi_schema):
    rooms = {
        "chat:*": {"history_size": 100},
        "ticker": {"send_queue": "conflate", "conflate_key": "symbol"},
        "doc:*": {"presence": True},
    }
    doc = document(trading_server(transports=["memory"], rooms=rooms))
    jsonschema.Draft7Validator(asyncapi_schema).validate(doc)
    assert doc["x-stelar-presence"]["server"][1] == {"$ref": "#/components/schemas/PresenceDiff"}
    assert doc["components"]["schemas"]["PresenceDiff"]["required"] == ["count", "seq"]
    assert doc["operations"]["request.history"]["reply"]["messages"] == [
        {"$ref": "#/channels/stelar/messages/history.reply"}
    ]
    messages, schemas = doc["components"]["messages"], doc["components"]["schemas"]
    assert messages["history.request"]["name"] == "$history"
    assert schemas["HistoryQuery"]["required"] == ["room"]
    assert schemas["HistoryAnswer"]["properties"]["position"] == {"$ref": "#/components/schemas/PositionJson"}
    assert doc["x-stelar-rooms"]["chat:*"]["history_size"] == 100
    assert doc["x-stelar-rooms"]["ticker"]["send_queue"] == "conflate"
    plain = document(trading_server(transports=["memory"]))
    assert "request.history" not in plain["operations"] and "x-stelar-rooms" not in plain
    assert "x-stelar-presence" not in plain


def test_a_server_that_traces_says_how_clients_attach_trace_context(asyncapi_schema):
    class Tracer:  # (the document only asks whether there is one)
        def process(self, event, request, client_id, protocol, size, parent): ...
        def connect(self, protocol): ...
        def send(self, destination, room, event): ...
        def deliver(self, destination, room, parent): ...

    class Tracing:
        @hookimpl
        def stelar_register_tracers(self, register):
            register("any", lambda context: Tracer())

    doc = document(trading_server(transports=["memory"], plugins=[Tracing()]))
    jsonschema.Draft7Validator(asyncapi_schema).validate(doc)
    assert doc["x-stelar-trace-context"] == {
        "format": "W3C traceparent (https://www.w3.org/TR/trace-context/#traceparent-header)",
        "flag": 0x80,
        "frames": [0, 1, 4],
        "maxLength": 255,
        "welcome": "trace",
    }
    assert "x-stelar-trace-context" not in document(trading_server(transports=["memory"]))


def test_a_broken_document_is_caught_by_the_same_check(asyncapi_schema):
    doc = document(trading_server(transports=["memory"]))
    doc["operations"]["receive.order"]["action"] = "consume"  # not an AsyncAPI action
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(asyncapi_schema).validate(doc)


def test_the_payload_schemas_say_what_the_types_say():
    schemas = document(trading_server(transports=["memory"]))["components"]["schemas"]
    assert schemas["Order"] == {
        "type": "object",
        "title": "Order",
        "description": "An order to trade.",
        "properties": {
            "symbol": {"type": "string", "maxLength": 8},
            "quantity": {"type": "integer", "exclusiveMinimum": 0},
            "side": {"enum": ["buy", "sell"]},
            "limit": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        },
        "required": ["symbol", "quantity"],
        "additionalProperties": False,
    }
    assert schemas["Fill"]["properties"]["venue"] == {"enum": ["lse", "nyse"]}
    assert schemas["Fill"]["required"] == ["order_id", "prices"]
    assert schemas["Tick"]["required"] == ["price", "symbol"]


PAYLOADS = [
    {"symbol": "ACME", "quantity": 5},
    {"symbol": "ACME", "quantity": 5, "side": "sell", "limit": 10.5},
    {"symbol": "ACME", "quantity": 5, "limit": None},
    {"symbol": "TOOLONGNAME", "quantity": 5},
    {"symbol": "ACME", "quantity": 0},
    {"symbol": "ACME", "quantity": "5"},
    {"symbol": "ACME", "quantity": 5, "side": "hold"},
    {"symbol": "ACME"},
    {"symbol": "ACME", "quantity": 5, "extra": 1},
    {"symbol": "ACME", "quantity": True},
    ["ACME", 5],
]


@pytest.mark.parametrize("stelar_transport", ["tcp"], indirect=True)
async def test_the_schema_and_the_server_agree_on_every_payload(stelar_server_factory):
    server = await stelar_server_factory()
    accepted = []

    @server.on_ack("place")
    def place(ctx, order: Order) -> bool:
        accepted.append(order)
        return True

    doc = document(server)
    schema = {**doc["components"]["messages"]["place.request"]["payload"], "components": doc["components"]}
    validator = jsonschema.Draft7Validator(schema)
    client = await connect_client(server)
    for payload in PAYLOADS:
        try:
            answer = await client.request("place", payload)
        except Exception as error:  # AckError(invalid_payload)
            answer = error
        assert (answer is True) == validator.is_valid(payload), payload
    assert len(accepted) == 3
    client.close()


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stelar_core.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


@pytest.fixture
def app_folder(tmp_path):
    (tmp_path / "trading_app.py").write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
            from tests.test_asyncapi import trading_server
            server = trading_server(port=3000)
            """
        )
    )
    return tmp_path


def test_stelar_asyncapi_prints_the_document(app_folder, asyncapi_schema):
    done = _run("asyncapi", "trading_app:server", "--server", "tcps://api.example.com:3001", cwd=app_folder)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    jsonschema.Draft7Validator(asyncapi_schema).validate(doc)
    assert doc["info"]["title"] == "trading_app:server"
    assert doc["servers"]["tcps"]["host"] == "api.example.com:3001"
    missing = _run("asyncapi", "trading_app:nothing", cwd=app_folder)
    assert missing.returncode == 2 and "has no attribute 'nothing'" in missing.stderr


def test_the_typescript_declarations_type_the_browser_client(app_folder):
    assert TSC.exists(), "scripts/test installs typescript (npm ci in tests/js)"
    done = _run("asyncapi", "trading_app:server", "--typescript", "--module", "./stelar.js", cwd=app_folder)
    assert done.returncode == 0, done.stderr
    (app_folder / "api.d.ts").write_text(done.stdout)
    (app_folder / "stelar.d.ts").write_text(STELAR_DTS.read_text())
    (app_folder / "app.ts").write_text(
        textwrap.dedent(
            """
            import type { TypedStelarClient, Order, Fill, Tick } from "./api";

            declare const client: TypedStelarClient;
            const order: Order = { symbol: "ACME", quantity: 5, side: "sell" };
            client.emit("order", order);
            client.emit("anything", { whatever: [1, 2] });
            client.on("tick", (tick: Tick) => console.log(tick.symbol, tick.price.toFixed(2)));
            async function place(): Promise<string> {
              const fill: Fill = await client.request("place", order);
              return fill.venue === "lse" ? fill.order_id : fill.prices.join(",");
            }
            // @ts-expect-error: a string where a number is declared
            client.emit("order", { symbol: "ACME", quantity: "5" });
            // @ts-expect-error: a field the type does not have
            client.emit("order", { symbol: "ACME", quantity: 5, admin: true });
            // @ts-expect-error: an enum value outside it
            client.emit("order", { symbol: "ACME", quantity: 5, side: "hold" });
            // @ts-expect-error: no such event
            client.emit("ordre", order);
            // @ts-expect-error: the server does not send this event
            client.on("order", () => {});
            // @ts-expect-error: a request's answer is a Fill, not a Tick
            const wrong: Promise<Tick> = client.request("place", order);
            export { place, wrong };
            """
        )
    )
    compiled = subprocess.run(
        [str(TSC), "--strict", "--noEmit", "--target", "es2022", "--module", "es2022", "app.ts"],
        capture_output=True,
        text=True,
        cwd=app_folder,
        timeout=120,
    )
    # Every correct use compiles, and every @ts-expect-error line is an error indeed (tsc fails
    # on an unused one).
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


@pytest.mark.parametrize("stelar_transport", ["ws"], indirect=True)
async def test_stelar_ws_serves_the_document_when_asked(stelar_server_factory, asyncapi_schema):
    def get(url):
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers, response.read()

    hidden = await stelar_server_factory()
    base = hidden.addresses["ws"][0].replace("ws://", "http://")
    with pytest.raises(urllib.error.HTTPError) as missing:
        await asyncio.to_thread(get, base + "asyncapi.json")
    missing.value.close()  # the error holds the response and its socket
    assert missing.value.code == 404

    server = await stelar_server_factory(ws={"asyncapi": True})
    server.on("order", lambda ctx, order: None)
    url = server.addresses["ws"][0]
    status, headers, body = await asyncio.to_thread(get, url.replace("ws://", "http://") + "asyncapi.json")
    doc = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    jsonschema.Draft7Validator(asyncapi_schema).validate(doc)
    host = url.removeprefix("ws://").rstrip("/")
    assert doc["servers"]["ws"] == {"host": host, "protocol": "ws"}
    assert "receive.order" in doc["operations"]
