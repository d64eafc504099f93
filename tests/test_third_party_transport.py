"""A third-party transport, for real: a separate distribution (Unix domain sockets, built on
stelar-tcp), pip-installed into a private folder, passes the conformance suite stelar ships and
is reached by StelarClient and configured from stelar serve like a built-in one."""

import textwrap

import pytest


@pytest.fixture(scope="module")
def plugin_site(install_distribution):
    return install_distribution("stelar-example-unix")


def test_it_passes_the_transport_conformance_suite(plugin_site, python_with, tmp_path):
    (tmp_path / "test_unix.py").write_text(
        textwrap.dedent(
            """
            import pytest

            from stelar_core.testing.conformance import TransportConformance


            class TestUnixTransport(TransportConformance):
                transport = "unix"

                @pytest.fixture
                def transport_options(self, tmp_path_factory):
                    return {"unix": {"path": str(tmp_path_factory.mktemp("sock") / "stelar.sock")}}
            """
        )
    )
    result = python_with(
        plugin_site,
        ["-m", "pytest", "-q", "-p", "stelar_core.testing.pytest_plugin", "-o", "asyncio_mode=auto",
         "-o", "asyncio_default_fixture_loop_scope=function", "-W", "error", "test_unix.py"],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "11 passed" in result.stdout


def test_stelar_client_reaches_it_by_url_and_serve_configures_it(plugin_site, python_with, tmp_path):
    socket_path = tmp_path / "s.sock"
    code = f"""
        import asyncio
        from stelar_core import StelarClient, StelarServer

        async def main():
            server = StelarServer(port=None, unix={{"path": {str(socket_path)!r}}})
            server.on_ack("add", lambda ctx: sum(ctx.data))
            async with server:
                print(server.addresses)
                async with StelarClient(server.addresses["unix"][0]) as client:
                    print(await client.request("add", [1, 2]), server.get_stats().connections_by_transport)

        asyncio.run(main())
    """
    result = python_with(plugin_site, ["-c", textwrap.dedent(code)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{{'unix': ['unix://{socket_path}']}}",
        "3 {'unix': 1}",
    ]
    helped = python_with(
        plugin_site, ["-c", "from stelar_core.cli import main; main(['serve', '--help'])"], tmp_path
    )
    assert "--unix-path PATH" in helped.stdout
