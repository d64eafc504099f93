"""stelar-tls on real sockets: wss:// and tcps://, the health port over https, certificates made
per run with trustme."""

import asyncio
import contextlib
import logging
import ssl
import urllib.request

import pytest
import trustme
from tls_support import LOOPBACK, client_context, expired, serial, served_serial, write_leaf

from stelar_core import ConfigError, NotConnected, StelarClient, StelarServer
from stelar_core.plugin_api import ConnectOptions, FrameType, find_connector
from stelar_core.testing import FakeClock, TestClient, connect_client, eventually


@pytest.fixture(scope="module")
def authority():
    return trustme.CA()


@pytest.fixture
def files(tmp_path, authority):
    """A certificate for 127.0.0.1 written to files, as a server is configured in production."""
    leaf = authority.issue_cert(*LOOPBACK)
    cert, key = write_leaf(leaf, tmp_path / "cert.pem", tmp_path / "key.pem")
    ca = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))
    return {"cert": cert, "key": key, "ca": str(ca), "leaf": leaf, "folder": tmp_path}


@pytest.fixture(params=["tcp", "ws"])
def stelar_transport(request):
    return request.param


@pytest.fixture
async def tls_server(stelar_server_factory, files):
    server = await stelar_server_factory(tls={"cert": files["cert"], "key": files["key"]})
    server.on_ack("echo", lambda ctx: ctx.data)
    return server


def failures(server):
    """A queue of (category, reason) for each TLS handshake the server saw fail."""
    queue = asyncio.Queue()
    server.plugin_manager.register(_FailureHook(queue), name=f"tls-failures-{id(queue)}")
    return queue


class _FailureHook:
    def __init__(self, queue):
        self.queue = queue

    from stelar_core import hookimpl

    @hookimpl
    def stelar_on_tls_handshake_failed(self, ip, protocol, category, reason):
        self.queue.put_nowait((category, reason, ip, protocol))


# --------------------------------------------------------------------------- serving


async def test_the_server_announces_the_secure_scheme(tls_server, stelar_transport):
    secure = {"tcp": "tcps://127.0.0.1:", "ws": "wss://127.0.0.1:"}[stelar_transport]
    assert tls_server.addresses[stelar_transport][0].startswith(secure)


async def test_a_client_trusting_the_ca_talks_over_tls(tls_server, files, stelar_transport):
    client = await connect_client(tls_server, ca_file=files["ca"])
    assert await client.request("echo", {"secure": True}) == {"secure": True}
    client.close()
    url = tls_server.addresses[stelar_transport][0]
    async with StelarClient(url, ca_file=files["ca"], reconnection=False) as stelar:
        assert await stelar.request("echo", "hi") == "hi"


async def test_verification_is_on_by_default_and_the_refusal_is_counted(tls_server):
    failed = failures(tls_server)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"unable to get local issuer"):
        await connect_client(tls_server)
    category, reason, ip, _ = await asyncio.wait_for(failed.get(), 5)
    # The client refused the server's certificate: the server saw its alert.
    assert (category, ip) == ("error", "127.0.0.1")
    assert "UNKNOWN_CA" in reason or "does not trust the certificate" in reason
    stats = tls_server.get_stats()
    assert stats.tls_handshake_failures == {"error": 1} and stats.total_connections == 0


async def test_a_client_trusting_another_ca_is_refused_by_its_own_check(tls_server, tmp_path):
    stranger = tmp_path / "stranger-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        await connect_client(tls_server, ca_file=str(stranger))


async def test_the_toml_section_configures_tls(tmp_path, files):
    config = tmp_path / "stelar.toml"
    config.write_text(
        f'host = "127.0.0.1"\n[stelar.ws]\nport = 0\n[stelar.tls]\ncert = "{files["cert"]}"\n'
        f'key = "{files["key"]}"\nmin_version = "1.3"\n'
    )
    server = StelarServer.from_toml(config)
    await server.start()
    try:
        assert server.addresses["ws"][0].startswith("wss://127.0.0.1:")
        assert server.config.plugin("tls").min_version == "1.3"
        client = await connect_client(server, ca_file=files["ca"])
        client.close()
    finally:
        await server.stop()
    assert server.addresses["ws"] == []  # a stopped TLS listener lists no address


async def test_reject_unauthorized_false_skips_verification(tls_server):
    client = await connect_client(tls_server, reject_unauthorized=False)
    assert await client.request("echo", 1) == 1
    client.close()


async def test_pem_contents_and_an_encrypted_key(stelar_server_factory, authority, tmp_path):
    from cryptography.hazmat.primitives import serialization

    leaf = authority.issue_cert(*LOOPBACK)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"open sesame"),
    )
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems).decode()
    server = await stelar_server_factory(tls={"cert": chain, "key": encrypted, "password": "open sesame"})
    server.on_ack("echo", lambda ctx: ctx.data)
    client = await connect_client(server, ca_file=authority.cert_pem.bytes().decode())  # contents too
    assert await client.request("echo", "sealed") == "sealed"
    client.close()
    assert server.get_config()["tls"]["key"] == "***" and server.get_config()["tls"]["password"] == "***"
    with pytest.raises(
        ConfigError,
        match=r"option 'tls.cert': the certificate and key do not load \(is the password right",
    ):
        StelarServer(transports=["memory"], tls={"cert": chain, "key": encrypted, "password": "wrong"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"cert": "/nonexistent/cert.pem", "key": "/nonexistent/key.pem"},
            "cannot read /nonexistent/cert.pem",
        ),
        ({"cert": "garbage"}, "option 'tls.cert': cannot read garbage"),
        ({"cert": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}, "not a PEM certificate"),
        ({"cert": 5}, "option 'tls.cert' = 5 is invalid: expected a path or PEM contents"),
        ({"client_cert": "always"}, "option 'tls.client_cert' = 'always' is invalid: expected one of"),
        ({"min_version": "1.1"}, "option 'tls.min_version' = '1.1' is invalid: expected one of '1.2', '1.3'"),
        ({"client_cert": "required"}, "option 'tls.client_cert' is set but TLS is off"),
        ({"ca_file": "ca.pem"}, "option 'tls.ca_file' is set but TLS is off"),
        ({"watch_interval": -1}, "expected seconds >= 0"),
        ({"sert": "x"}, "did you mean 'cert'"),
    ],
)
def test_bad_options_name_the_option(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        StelarServer(transports=["memory"], tls=options)


def test_client_certificates_need_a_ca_file(files):
    with pytest.raises(ConfigError, match=r"client certificates are verified against tls.ca_file"):
        StelarServer(
            transports=["memory"], tls={"cert": files["cert"], "key": files["key"], "client_cert": "required"}
        )


def test_a_mismatched_key_and_an_expired_certificate_refuse_to_start(files, authority, tmp_path):
    other = authority.issue_cert(*LOOPBACK)
    _, other_key = write_leaf(other, tmp_path / "other.pem", tmp_path / "other-key.pem")
    with pytest.raises(ConfigError, match=r"the certificate and key do not load: KEY_VALUES_MISMATCH"):
        StelarServer(transports=["memory"], tls={"cert": files["cert"], "key": other_key})
    old_cert, old_key = write_leaf(
        expired(authority, *LOOPBACK), tmp_path / "old.pem", tmp_path / "old-key.pem"
    )
    with pytest.raises(ConfigError, match=r"the certificate .* expired on"):
        StelarServer(transports=["memory"], tls={"cert": old_cert, "key": old_key})


async def test_only_the_transports_named_serve_tls(stelar_server_factory, files):
    server = await stelar_server_factory(
        transports=["ws", "tcp"], tls={"cert": files["cert"], "key": files["key"], "transports": ["ws"]}
    )
    assert server.addresses["ws"][0].startswith("wss://")
    assert server.addresses["tcp"][0].startswith("tcp://")


async def test_min_version_1_3_refuses_a_tls_1_2_client(stelar_server_factory, files, authority):
    server = await stelar_server_factory(
        tls={"cert": files["cert"], "key": files["key"], "min_version": "1.3"}
    )
    failed = failures(server)
    old = client_context(authority)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await asyncio.open_connection("127.0.0.1", server.get_port(), ssl=old, server_hostname="127.0.0.1")
    assert (await asyncio.wait_for(failed.get(), 5))[0] == "error"
    assert await served_serial(server.get_port(), authority) == serial(files["leaf"])


async def test_alpn_names_each_transports_protocol(stelar_server_factory, files, authority, stelar_transport):
    server = await stelar_server_factory(tls={"cert": files["cert"], "key": files["key"]})
    context = client_context(authority)
    context.set_alpn_protocols(["http/1.1", "stelar"])
    _, writer = await asyncio.open_connection(
        "127.0.0.1", server.get_port(), ssl=context, server_hostname="127.0.0.1"
    )
    chosen = writer.get_extra_info("ssl_object").selected_alpn_protocol()
    writer.close()
    assert chosen == {"ws": "http/1.1", "tcp": "stelar"}[stelar_transport]


# --------------------------------------------------------------------------- mismatches


async def test_plaintext_sent_to_a_tls_port_fails_cleanly_and_the_server_carries_on(
    tls_server, stelar_transport, files
):
    failed = failures(tls_server)
    url = tls_server.addresses[stelar_transport][0].replace("tcps://", "tcp://").replace("wss://", "ws://")
    plain = TestClient()
    if stelar_transport == "ws":
        with pytest.raises(ConnectionError, match=r"if the server serves TLS on that port, use wss://"):
            await find_connector(url)(url, plain, ConnectOptions(connect_timeout=5))
    else:
        plain.link = await find_connector(url)(url, plain, ConnectOptions())
        plain.send_frame(FrameType.CONNECT, payload=b"{}")
        assert (await plain.wait_closed())[0] == 1006  # closed without a stelar answer
        assert plain.frames_received == 0
    category, reason, _, protocol = await asyncio.wait_for(failed.get(), 5)
    assert (category, protocol) == ("error", stelar_transport)
    assert "plaintext" in reason
    assert tls_server.get_stats().total_connections == 0
    secure = await connect_client(tls_server, ca_file=files["ca"])
    assert await secure.request("echo", "after") == "after"
    secure.close()


async def test_tls_sent_to_a_plaintext_port_fails_clearly(stelar_server_factory, files, stelar_transport):
    server = await stelar_server_factory()
    server.on_ack("echo", lambda ctx: ctx.data)
    url = server.addresses[stelar_transport][0].replace("tcp://", "tcps://").replace("ws://", "wss://")
    with pytest.raises(ConnectionError, match=r"does not speak TLS on that port; use ws:// or tcp://"):
        await find_connector(url)(url, TestClient(), ConnectOptions(ca_file=files["ca"], connect_timeout=5))
    plain = await connect_client(server)
    assert await plain.request("echo", "unharmed") == "unharmed"
    plain.close()


async def test_a_stalled_handshake_is_closed_at_the_connect_deadline(stelar_server_factory, files):
    clock = FakeClock()
    server = await stelar_server_factory(
        connect_timeout=2, clock=clock, tls={"cert": files["cert"], "key": files["key"]}
    )
    failed = failures(server)
    timers = clock.pending  # the heartbeat sweep's
    reader, writer = await asyncio.open_connection("127.0.0.1", server.get_port())  # and no hello
    await clock.wait_for_timers(timers + 1)  # the handshake's deadline
    name = server.transports[0].name
    # A handshake in progress is not a connection.
    assert server.get_stats().transports[name]["tls_handshakes"] == 1
    assert server.get_stats().active_connections == 0 and server.get_stats().connections_by_transport == {}
    clock.advance(1.9)
    assert failed.empty()
    clock.advance(0.1)
    with contextlib.suppress(ConnectionResetError):  # aborted: a reset or an end of stream
        assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    category, reason, _, _ = await asyncio.wait_for(failed.get(), 5)
    assert category == "timeout" and "connect_timeout (2 s)" in reason
    assert server.get_stats().transports[name]["tls_handshakes"] == 0
    client = await connect_client(server, ca_file=files["ca"])
    client.close()


async def test_handshakes_in_progress_are_bounded(stelar_server_factory, files, monkeypatch):
    monkeypatch.setattr("stelar_core.transports.listening.MAX_HANDSHAKES", 2)
    server = await stelar_server_factory(tls={"cert": files["cert"], "key": files["key"]})
    failed = failures(server)
    name = server.transports[0].name
    idle = [await asyncio.open_connection("127.0.0.1", server.get_port()) for _ in range(2)]  # no hello
    reader, writer = await asyncio.open_connection("127.0.0.1", server.get_port())
    category, reason, _, _ = await asyncio.wait_for(failed.get(), 5)
    assert category == "overload" and "2 TLS handshakes already in progress" in reason
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once
    assert server.get_stats().transports[name]["tls_handshakes"] == 2
    for _, idle_writer in [*idle, (reader, writer)]:
        idle_writer.close()


async def test_accepting_pauses_when_out_of_file_descriptors(
    stelar_server_factory, files, monkeypatch, caplog
):
    import errno
    import socket

    server = await stelar_server_factory(tls={"cert": files["cert"], "key": files["key"]})
    server.on_ack("echo", lambda ctx: ctx.data)
    monkeypatch.setattr("stelar_core.transports.listening.ACCEPT_ERROR_PAUSE", 0)
    real_accept = socket.socket.accept
    failing = [OSError(errno.EMFILE, "Too many open files")]

    def accept(sock):
        if failing:
            raise failing.pop()
        return real_accept(sock)

    monkeypatch.setattr(socket.socket, "accept", accept)
    client = await connect_client(server, ca_file=files["ca"])  # accepted once accepting resumes
    assert await client.request("echo", "after") == "after"
    assert any("Too many open files; trying again" in record.getMessage() for record in caplog.records)
    client.close()


# --------------------------------------------------------------------------- client certificates


@pytest.fixture
async def mtls_server(stelar_server_factory, files):
    server = await stelar_server_factory(
        tls={"cert": files["cert"], "key": files["key"], "ca_file": files["ca"], "client_cert": "required"}
    )
    seen = []

    @server.use
    async def only_known_services(ctx, call_next):
        seen.append(ctx.peer_certificate)
        await call_next()

    server.on_ack(
        "whoami", lambda ctx: dict(ctx.peer_certificate["subject"][-1]) if ctx.peer_certificate else None
    )
    server.seen = seen
    return server


async def test_mtls_a_client_certificate_is_verified_and_shown_to_middleware(
    mtls_server, authority, tmp_path
):
    service = authority.issue_cert("billing.internal", common_name="billing")
    cert, key = write_leaf(service, tmp_path / "svc.pem", tmp_path / "svc-key.pem")
    client = await connect_client(mtls_server, tls={"cert": cert, "key": key}, **_trust(authority))
    assert await client.request("whoami") == {"commonName": "billing"}
    (certificate,) = mtls_server.seen
    assert certificate["serialNumber"] == serial(service)
    assert ("DNS", "billing.internal") in certificate["subjectAltName"]
    client.close()


def _trust(authority):
    return {"ca_file": authority.cert_pem.bytes().decode()}


@pytest.mark.parametrize("case", ["none", "other CA", "expired"])
async def test_mtls_refusals_are_counted_and_hooked(mtls_server, authority, tmp_path, case, stelar_transport):
    failed = failures(mtls_server)
    tls = {}
    if case != "none":
        issued = (
            trustme.CA().issue_cert("rogue.internal")
            if case == "other CA"
            else expired(authority, "old.internal")
        )
        cert, key = write_leaf(issued, tmp_path / "c.pem", tmp_path / "k.pem")
        tls = {"cert": cert, "key": key}
    with pytest.raises((ConnectionError, ssl.SSLError, NotConnected)) as refused:
        client = await connect_client(mtls_server, tls=tls, timeout=5, **_trust(authority))
        await client.request("whoami")  # TLS 1.3: the refusal may come after the client's side is done
    if stelar_transport == "ws":
        assert "requires a client certificate" in str(refused.value)
    category, reason, _, _ = await asyncio.wait_for(failed.get(), 5)
    assert category == "client_certificate", reason
    assert mtls_server.get_stats().tls_handshake_failures == {"client_certificate": 1}
    assert mtls_server.seen == [] and mtls_server.get_stats().total_connections == 0


async def test_mtls_optional_lets_clients_without_a_certificate_in(
    stelar_server_factory, files, authority, tmp_path
):
    server = await stelar_server_factory(
        tls={"cert": files["cert"], "key": files["key"], "ca_file": files["ca"], "client_cert": "optional"}
    )
    server.on_ack("cert", lambda ctx: ctx.peer_certificate is not None)
    anonymous = await connect_client(server, **_trust(authority))
    assert await anonymous.request("cert") is False
    cert, key = write_leaf(authority.issue_cert("svc"), tmp_path / "c.pem", tmp_path / "k.pem")
    known = await connect_client(server, tls={"cert": cert, "key": key}, **_trust(authority))
    assert await known.request("cert") is True
    anonymous.close()
    known.close()


def test_client_tls_options_are_checked():
    with pytest.raises(
        ConfigError,
        match=r"unknown client option tls key 'certificate'; known: cert, key, min_version",
    ):
        StelarClient("wss://127.0.0.1:1", tls={"certificate": "c.pem"})
    with pytest.raises(ConfigError, match=r"tls\['key'\].*needs tls\['cert'\]"):
        StelarClient("tcps://127.0.0.1:1", tls={"key": "k.pem"})
    with pytest.raises(ConfigError, match=r"client TLS: cannot read /nonexistent.pem"):
        StelarClient("tcps://127.0.0.1:1", tls={"cert": "/nonexistent.pem"})
    StelarClient("tcp://127.0.0.1:1", tls={"certificate": "ignored without TLS"})


# --------------------------------------------------------------------------- renewal


async def test_a_renewed_certificate_is_served_without_a_restart(
    stelar_server_factory, files, authority, caplog
):
    server = await stelar_server_factory(
        tls={"cert": files["cert"], "key": files["key"], "watch_interval": 0.05}
    )
    server.on_ack("echo", lambda ctx: ctx.data)
    port = server.get_port()
    before = await connect_client(server, ca_file=files["ca"])
    assert await served_serial(port, authority) == serial(files["leaf"])

    renewed = authority.issue_cert(*LOOPBACK)
    write_leaf(renewed, files["folder"] / "cert.pem", files["folder"] / "key.pem")

    async def serves_renewed():
        return await served_serial(port, authority) == serial(renewed)

    await eventually(serves_renewed, timeout=5, what="the renewed certificate served")
    assert any("certificate renewed" in record.message for record in caplog.records)
    assert await before.request("echo", "kept") == "kept"  # the connection opened before stays
    after = await connect_client(server, ca_file=files["ca"])
    assert await after.request("echo", "new") == "new"
    before.close()
    after.close()


@pytest.mark.parametrize("replacement", ["garbage", "mismatched key", "expired"])
async def test_a_bad_replacement_is_refused_and_the_old_certificate_stays(
    stelar_server_factory, files, authority, caplog, replacement
):
    server = await stelar_server_factory(
        tls={"cert": files["cert"], "key": files["key"], "watch_interval": 0.05}
    )
    port = server.get_port()
    cert, key = files["folder"] / "cert.pem", files["folder"] / "key.pem"
    if replacement == "garbage":
        cert.write_bytes(b"-----BEGIN CERTIFICATE-----\ntruncated by a failed renewal")
    elif replacement == "mismatched key":
        write_leaf(authority.issue_cert(*LOOPBACK), cert, files["folder"] / "unused-key.pem")
    else:
        write_leaf(expired(authority, *LOOPBACK), cert, key)
    caplog.set_level(logging.ERROR, "stelar.tls")

    def refused():
        return [record for record in caplog.records if "refused" in record.message]

    (record,) = await eventually(refused, timeout=5, what="the refusal logged")
    assert (
        record.levelno == logging.ERROR
        and "still serving certificate serial " + serial(files["leaf"]) in record.message
    )
    assert await served_serial(port, authority) == serial(files["leaf"])
    fixed = authority.issue_cert(*LOOPBACK)
    write_leaf(fixed, cert, key)  # the next renewal attempt succeeds

    async def serves_fixed():
        return await served_serial(port, authority) == serial(fixed)

    await eventually(serves_fixed, timeout=5, what="the fixed certificate served")


# --------------------------------------------------------------------------- the seam


async def test_the_health_port_serves_https(stelar_server_factory, files, stelar_transport):
    server = await stelar_server_factory(
        transports=[stelar_transport, "http"],
        health={"port": 0},
        tls={"cert": files["cert"], "key": files["key"]},
    )
    (url,) = server.addresses["http"]
    assert url.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=files["ca"])

    def get(path):
        with urllib.request.urlopen(url + path, context=context, timeout=5) as response:
            return response.read().decode()

    failed = failures(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.get_port(stelar_transport))
    writer.write(b"GET / HTTP/1.1\r\n\r\n")  # plaintext to a TLS port: counted in /metrics
    await asyncio.wait_for(failed.get(), 5)
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert '"status":"ok"' in await asyncio.to_thread(get, "/health")
    metrics = await asyncio.to_thread(get, "/metrics")
    assert 'stelar_tls_handshake_failures_total{category="error"} 1.0' in metrics


def test_without_stelar_tls_the_options_and_urls_name_the_distribution(monkeypatch, files):
    monkeypatch.setenv("STELAR_BLOCK_PLUGINS", "tls")
    with pytest.raises(
        ConfigError,
        match=r"option 'tls' belongs to a plugin that is not installed\. Install it with: pip install stelar-tls",  # noqa: E501
    ):
        StelarServer(transports=["memory"], tls={"cert": files["cert"], "key": files["key"]})
    for url in ("wss://127.0.0.1:1/", "tcps://127.0.0.1:1"):
        with pytest.raises(
            ConfigError,
            match=r"needs TLS, which no installed plugin provides. Install it with: pip install stelar-tls",
        ):
            StelarClient(url)


def test_two_configured_tls_providers_are_refused(files):
    from stelar_core import hookimpl
    from stelar_core.plugin_api import TLSProvider

    class OtherTLS:
        name = "other-tls"

        @hookimpl
        def stelar_register_tls(self, register):
            register("other", TLSProvider(server=lambda context: _Plain(), client=lambda options: None))

    with pytest.raises(
        ConfigError, match=r"two TLS providers are configured, other .* and tls .*: configure one"
    ):
        StelarServer(
            transports=["memory"], plugins=[OtherTLS()], tls={"cert": files["cert"], "key": files["key"]}
        )


class _Plain:
    def context(self, transport, alpn):
        return None
