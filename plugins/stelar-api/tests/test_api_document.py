"""The OpenAPI document agrees with what the server accepts; keys and options are checked with
errors that name the option and never repeat a secret."""

from __future__ import annotations

import hashlib
import json

import jsonschema
import pytest
from api_support import KEYS, api

from stelar_api.commands import COMMANDS
from stelar_api.keys import ApiKey, api_keys, bearer, find_key
from stelar_core import StelarServer
from stelar_core.plugin_api import ConfigError
from stelar_core.testing.http import http_call

GOOD = {
    "publish": {"room": "r", "event": "e", "data": {"x": 1}, "exclude": ["a"]},
    "broadcast": {"event": "e", "binary": "AAE="},
    "send": {"client": "c", "event": "e"},
    "disconnect": {"client": "c", "code": 4000, "reason": "bye"},
    "join": {"client": "c", "room": "r"},
    "leave": {"client": "c", "room": "r"},
    "rooms": {},
    "members": {"room": "r"},
    "clients": {"room": "r", "limit": 10},
    "info": {"client": "c"},
    "stats": {},
    "presence": {"room": "r"},
    "history": {"room": "r", "since": 0, "limit": 5},
}
BAD = {
    "publish": {"event": "e"},
    "disconnect": {"client": "c", "code": 99},
    "history": {"room": "r", "limit": 0},
    "rooms": {"extra": 1},
}


async def test_the_openapi_document_describes_every_command_as_the_server_checks_it(stelar_server_factory):
    server = await stelar_server_factory(transports=["ws"], api={"enabled": True, "keys": KEYS})
    port = server.get_port("ws")
    status, headers, body = await http_call(port, "/api/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["openapi"] == "3.1.0" and set(GOOD) == set(COMMANDS)
    for name, params in GOOD.items():
        operation = document["paths"][f"/api/{name}"]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(params, schema)  # what the document allows ...
        status, _, answer = await api(port, name, params)
        assert status in (200, 404), (name, answer)  # ... the server takes (404: no such client)
    for name, params in BAD.items():
        schema = document["paths"][f"/api/{name}"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(params, schema)  # what the document refuses ...
        assert (await api(port, name, params))[0] == 400  # ... the server refuses
    batch = document["paths"]["/api/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate({"commands": [{"method": n, "params": p} for n, p in GOOD.items()]}, batch)
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_keys_are_compared_with_every_key_and_found_by_secret():
    keys = api_keys("api.keys", ["a" * 16, {"key": "b" * 20, "name": "dash", "read_only": True}])
    unnamed = f"key-{hashlib.sha256(b'a' * 16).hexdigest()[:8]}"
    assert [(key.name, key.read_only) for key in keys] == [(unnamed, False), ("dash", True)]
    assert find_key(keys, "b" * 20) is keys[1] and find_key(keys, "a" * 16) is keys[0]
    assert find_key(keys, "a" * 15) is None and find_key(keys, "") is None
    assert "b" * 20 not in repr(keys[1])  # only a digest is kept, and not shown
    assert bearer("Bearer  abc ") == "abc" and bearer("bearer abc") == "abc"
    assert bearer("Basic abc") is None and bearer("Bearer") is None and bearer(None) is None


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ("one-key-only-as-a-string", "expected a list"),
        (["short"], "api.keys[0]"),
        ([{"key": "x" * 20, "colour": "red"}], "unknown fields ['colour']"),
        ([{"key": "x" * 20, "read_only": "yes"}], "api.keys[0].read_only"),
        (
            [{"key": "x" * 20, "name": "ops"}, {"key": "y" * 20, "name": "ops"}],
            "['ops'] appear more than once",
        ),
    ],
)
def test_bad_keys_name_the_option_and_never_the_secret(keys, says):
    with pytest.raises(ConfigError) as error:
        StelarServer(transports=["ws"], api={"enabled": True, "keys": keys})
    assert says in str(error.value)
    secrets = [key if isinstance(key, str) else key["key"] for key in keys if not isinstance(keys, str)]
    assert not any(secret in str(error.value) for secret in secrets)


def test_other_options_are_checked():
    with pytest.raises(ConfigError, match=r"api\.prefix"):
        StelarServer(transports=["ws"], api={"prefix": "api"})
    with pytest.raises(ConfigError, match=r"api\.rate_limit"):
        StelarServer(transports=["ws"], api={"rate_limit": {"max_points": 0}})
    with pytest.raises(ConfigError, match=r"api\.tail_sample"):
        StelarServer(transports=["ws"], api={"tail_sample": 0})
    assert isinstance(api_keys("k", [ApiKey("n", b"d")])[0], ApiKey)
