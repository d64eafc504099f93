"""TLS on both network transports (tcps://, wss://), with certificates generated per run."""

import ssl

import pytest
import trustme

from stelar_core import ConfigError, StelarServer, TLSConfig
from stelar_core.protocol import FrameType
from stelar_core.testing import TestClient, connect_client
from stelar_core.transports.base import ConnectOptions
from stelar_core.transports.connectors import find_connector


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    cert, key, ca = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(cert)
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(cert, append=True)
    issued.private_key_pem.write_to_path(key)
    authority.cert_pem.write_to_path(ca)
    return {"tls": TLSConfig(cert=str(cert), key=str(key)), "ca": str(ca)}


@pytest.fixture(params=["tcp", "ws"])
def stelar_transport(request):
    return request.param


@pytest.fixture
async def tls_server(stelar_server_factory, certificates):
    server = await stelar_server_factory(tls=certificates["tls"])
    server.on_ack("echo", lambda ctx: ctx.data)
    return server


async def test_the_server_announces_the_secure_scheme(tls_server, stelar_transport):
    secure = {"tcp": "tcps://127.0.0.1:", "ws": "wss://127.0.0.1:"}[stelar_transport]
    assert tls_server.addresses[stelar_transport][0].startswith(secure)


async def test_a_client_trusting_the_ca_talks_over_tls(tls_server, certificates):
    client = await connect_client(tls_server, ca_file=certificates["ca"])
    assert await client.request("echo", {"secure": True}) == {"secure": True}
    client.close()


async def test_verification_is_on_by_default(tls_server):
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect_client(tls_server)
    assert tls_server.get_stats().active_connections == 0


async def test_reject_unauthorized_false_skips_verification(tls_server):
    client = await connect_client(tls_server, reject_unauthorized=False)
    assert await client.request("echo", 1) == 1
    client.close()


async def test_a_plain_text_client_fails_cleanly_and_the_server_carries_on(
    tls_server, stelar_transport, certificates
):
    url = tls_server.addresses[stelar_transport][0].replace("tcps://", "tcp://").replace("wss://", "ws://")
    plain = TestClient()
    if stelar_transport == "ws":
        # The upgrade request is not a TLS hello: the server drops it, the handshake never answers.
        with pytest.raises(ConnectionError, match="connection lost during the handshake"):
            await find_connector(url)(url, plain, ConnectOptions(connect_timeout=5))
    else:
        plain.link = await find_connector(url)(url, plain, ConnectOptions())
        plain.send_frame(FrameType.CONNECT, payload=b"{}")
        assert (await plain.wait_closed())[0] == 1006  # closed without a stelar answer
        assert plain.frames_received == 0
    assert tls_server.get_stats().total_connections == 0
    secure = await connect_client(tls_server, ca_file=certificates["ca"])
    assert await secure.request("echo", "after") == "after"
    secure.close()


@pytest.mark.parametrize("transport_options", [{"port": None, "tcp_port": 0}, {"port": 0}])
def test_unreadable_certificates_name_the_option(tmp_path, transport_options):
    with pytest.raises(ConfigError, match="option 'tls': cannot load certificate"):
        StelarServer(
            **transport_options, tls={"cert": str(tmp_path / "no.pem"), "key": str(tmp_path / "no.key")}
        )
