"""The admin page over HTTP (its files, headers, login, sessions, tail) and its sessions'
bookkeeping; the page itself in Chromium is test_admin_browser.py."""

from __future__ import annotations

import json

import pytest
from api_support import KEY, KEYS, READ_ONLY_KEY, api

from stelar_api.access import AdminSessions
from stelar_api.keys import api_keys
from stelar_core import StelarClient
from stelar_core.testing import eventually
from stelar_core.testing.http import http_call


@pytest.fixture
async def admin_server(stelar_server_factory):
    async def make(**api_options):
        options = {"enabled": True, "admin": True, "keys": KEYS, **api_options}
        server = await stelar_server_factory(transports=["tcp", "ws"], api=options)
        return server, server.get_port("ws")

    return make


async def login(port, key, **headers):
    status, _, body = await http_call(
        port,
        "/admin/login",
        "POST",
        {"Content-Type": "application/json", **headers},
        json.dumps({"key": key}).encode(),
    )
    return status, json.loads(body)


async def test_the_page_and_its_files_are_served_unframeable_and_offline(admin_server):
    _, port = await admin_server()
    status, headers, body = await http_call(port, "/admin")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    assert (
        "frame-ancestors 'none'" in policy
        and "script-src 'self'" in policy
        and "default-src 'none'" in policy
    )
    assert b'content="/api"' in body and b'src="/admin/admin.js"' in body
    assert b"http" not in body.replace(b"http-equiv", b"")  # nothing from another origin: works offline
    for path, kind in (("/admin/admin.js", "text/javascript"), ("/admin/admin.css", "text/css")):
        status, headers, _ = await http_call(port, path)
        assert status == 200 and headers["content-type"].startswith(kind)
        again = await http_call(port, path, headers={"If-None-Match": headers["etag"]})
        assert again[0] == 304


async def test_login_opens_a_session_that_acts_with_the_keys_rights(admin_server):
    _, port = await admin_server()
    status, session = await login(port, KEY)
    assert status == 200 and session["name"] == "ops" and session["read_only"] is False
    assert session["token"].startswith("session.") and session["expires_in"] == 3600
    assert (await api(port, "rooms", key=session["token"]))[0] == 200
    status, read_only = await login(port, READ_ONLY_KEY)
    assert status == 200 and read_only["read_only"] is True
    assert (await api(port, "rooms", key=read_only["token"]))[0] == 200
    assert (await api(port, "publish", {"room": "r", "event": "e"}, key=read_only["token"]))[0] == 403
    # Logging out ends the session; a forged one never worked.
    status, _, _ = await http_call(
        port, "/admin/logout", "POST", {"Authorization": f"Bearer {session['token']}"}, b""
    )
    assert status == 200
    assert (await api(port, "rooms", key=session["token"]))[0] == 401
    assert (await api(port, "rooms", key="session.forged-token"))[0] == 401


async def test_a_session_expires(admin_server):
    _, port = await admin_server(admin_session_ttl=0.5)
    status, session = await login(port, KEY)
    assert status == 200 and session["expires_in"] == 0.5
    assert (await api(port, "rooms", key=session["token"]))[0] == 200
    await eventually(lambda: _refused(port, session["token"]), what="the session expired", timeout=5)
    status, _, answer = await api(port, "rooms", key=session["token"])
    assert status == 401 and "expired" in answer["error"]["message"]


async def _refused(port, token):
    return (await api(port, "rooms", key=token))[0] == 401


async def test_failed_logins_are_throttled_per_address(admin_server):
    server, port = await admin_server(failed_auth_limit={"max_points": 3, "window": 600})
    for _ in range(3):
        status, answer = await login(port, "wrong-key-0123456789")
        assert status == 401 and answer["error"]["code"] == "unauthorized"
    status, answer = await login(port, KEY)
    assert status == 429 and answer["error"]["code"] == "too_many_failures"
    counters = server.get_stats().counters
    assert counters["admin_logins:failed"] == 3 and counters["admin_logins:throttled"] == 1
    status, answer = await login(port, "x")
    assert status == 429  # not even looked at


async def test_bad_logins_and_cross_site_requests_are_refused(admin_server):
    _, port = await admin_server()
    for body in (b"", b"[]", b'{"key": 5}', b"x" * 5000):
        status, _, answer = await http_call(
            port, "/admin/login", "POST", {"Content-Type": "application/json"}, body
        )
        assert status == 400 and b"error" in answer
    status, answer = await login(port, KEY, Origin="http://evil.example")
    assert status == 403 and answer["error"]["code"] == "cross_origin"
    status, _ = await login(port, KEY, Origin=f"http://127.0.0.1:{port}", Host=f"127.0.0.1:{port}")
    assert status == 200


async def test_the_tail_records_what_passes_and_filters_it(admin_server):
    server, port = await admin_server()
    _, session = await login(port, KEY)
    auth = {"Authorization": f"Bearer {session['token']}", "Content-Type": "application/json"}

    async def tail(**request):
        status, _, body = await http_call(port, "/admin/tail", "POST", auth, json.dumps(request).encode())
        assert status == 200, body
        return json.loads(body)

    first = await tail()  # starts listening
    assert first["events"] == [] and first["sample"] == 1.0
    client = StelarClient(server.addresses["tcp"][0], reconnection=False)
    await client.connect()
    await client.join_room("chat:1")
    client.emit("pong", 1)
    client.emit("ping", 2)
    await _delivered(server, client)
    everything = await tail(after=first["last"])
    kinds = [(event["kind"], event["event"], event["room"]) for event in everything["events"]]
    assert ("connect", None, None) in kinds and ("join", None, "chat:1") in kinds
    assert ("event", "pong", None) in kinds and ("event", "ping", None) in kinds
    assert all(event["client"] == client.id for event in everything["events"])
    pings = await tail(after=first["last"], event="pi*")
    assert [event["event"] for event in pings["events"]] == ["ping"]
    rooms = await tail(after=first["last"], room="chat:*")
    assert [event["kind"] for event in rooms["events"]] == ["join"]
    assert (await tail(after=everything["last"]))["events"] == []
    status, _, _ = await http_call(port, "/admin/tail", "POST", auth, b'{"after": -1}')
    assert status == 400
    status, _, _ = await http_call(port, "/admin/tail", "POST", {}, b"{}")
    assert status == 401
    await client.disconnect()


async def _delivered(server, client):
    """Until the server has handled what the client sent (a request answered after it)."""
    server.on_ack("sync", lambda ctx: True)
    assert await client.request("sync") is True


async def test_the_tail_samples(admin_server):
    server, port = await admin_server(tail_sample=0.25)
    _, session = await login(port, KEY)
    auth = {"Authorization": f"Bearer {session['token']}", "Content-Type": "application/json"}
    await http_call(port, "/admin/tail", "POST", auth, b"{}")
    client = StelarClient(server.addresses["tcp"][0], reconnection=False)
    await client.connect()
    for n in range(40):
        client.emit("tick", n)
    await _delivered(server, client)
    _, _, body = await http_call(port, "/admin/tail", "POST", auth, b'{"event": "tick"}')
    assert len(json.loads(body)["events"]) == 10  # one in four of the 40
    await client.disconnect()


async def test_off_by_default(stelar_server_factory):
    server = await stelar_server_factory(transports=["ws"], api={"enabled": True, "keys": KEYS})
    assert (await http_call(server.get_port("ws"), "/admin"))[0] == 404


def test_sessions_expire_are_bounded_and_follow_their_key():
    now = [0.0]
    sessions = AdminSessions(clock=lambda: now[0])
    keys = api_keys("k", [{"key": "a" * 16, "name": "ops"}, {"key": "b" * 16, "name": "dash"}])
    token = sessions.open(keys[0], ttl=10, limit=2)
    assert sessions.find(token, keys) is keys[0]
    now[0] = 10
    assert sessions.find(token, keys) is None and len(sessions) == 0  # expired, and forgotten
    first, second = sessions.open(keys[0], 10, 2), sessions.open(keys[1], 10, 2)
    third = sessions.open(keys[0], 10, 2)
    assert sessions.find(first, keys) is None  # the oldest made room
    assert sessions.find(second, keys) is keys[1] and sessions.find(third, keys) is keys[0]
    demoted = api_keys("k", [{"key": "b" * 16, "name": "dash"}])
    assert sessions.find(third, demoted) is None  # its key was removed: the session ends with it
