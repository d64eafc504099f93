"""stelar-tcp over TLS, with certificates generated for each test run (trustme)."""

import ssl

import pytest
import trustme

from stelar_core import ConfigError, NotConnected, StelarServer, TLSConfig
from stelar_core.testing import TestClient, connect_client
from stelar_tcp import connect_tcp


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


@pytest.fixture
async def tls_server(stelar_server_factory, certificates):
    server = await stelar_server_factory(transports=["tcp"], tls=certificates["tls"])
    server.on_ack("echo", lambda ctx: ctx.data)
    return server


async def test_the_server_announces_tcps(tls_server):
    assert tls_server.addresses["tcp"][0].startswith("tcps://127.0.0.1:")


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


async def test_a_plain_text_client_fails_cleanly_and_the_server_carries_on(tls_server, certificates):
    port = tls_server.get_port()
    plain_url = f"tcp://127.0.0.1:{port}"
    plain = TestClient()
    plain.link = await connect_tcp(plain_url, plain)
    plain.emit("hello", "in clear")
    code, _ = await plain.wait_closed()
    assert code == 1006
    with pytest.raises(NotConnected):
        await plain.connected
    secure = await connect_client(tls_server, ca_file=certificates["ca"])
    assert await secure.request("echo", "after") == "after"
    secure.close()


def test_unreadable_certificates_name_the_option(tmp_path):
    with pytest.raises(ConfigError, match="option 'tls': cannot load certificate"):
        StelarServer(
            port=None, tcp_port=0, tls={"cert": str(tmp_path / "no.pem"), "key": str(tmp_path / "no.key")}
        )
