"""Entry-point discovery for real: a separate distribution (pip-installed by conftest.py),
selectable by name, configured by its own options from Python, TOML and stelar serve."""

import json
import textwrap

import pytest


@pytest.fixture(scope="module")
def plugin_site(install_distribution):
    return install_distribution("stelar-example-limiter")


@pytest.fixture
def run_python(python_with):
    return lambda site, code: python_with(site, ["-c", textwrap.dedent(code)])


def test_the_installed_provider_is_selectable_by_name(plugin_site, run_python):
    result = run_python(
        plugin_site,
        """
        import asyncio
        from stelar_core import RateLimit, StelarServer
        from stelar_core.testing import connect_client

        async def main():
            server = StelarServer(transports=["memory"], rate_limiter="fixed-window",
                                  rate_limit=RateLimit(2, 3600))
            limiter = server.hub.limits.global_limiter
            print(type(limiter).__module__, type(limiter).__name__)
            provider = server.providers["rate limiter"].get("fixed-window", "rate_limiter")
            print(provider.plugin, server.plugin_manager.distributions[provider.plugin])
            async with server:
                client = await connect_client(server)
                for _ in range(3):
                    client.emit("e")
                code, _ = await client.next_error()
                print(code)

        asyncio.run(main())
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stelar_example_limiter FixedWindowLimiter",
        "example-limiter ('stelar-example-limiter', '1.2.3')",
        "rate_limited",
    ]


def test_stelar_plugins_lists_the_distribution(plugin_site, run_python):
    result = run_python(
        plugin_site, "from stelar_core.cli import main; raise SystemExit(main(['plugins', '--json']))"
    )
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["example-limiter"] == {
        "name": "example-limiter",
        "distribution": "stelar-example-limiter",
        "version": "1.2.3",
        "hooks": ["stelar_add_options", "stelar_register_rate_limiters"],
        "providers": ["rate limiter:fixed-window"],
        "options": [
            {
                "name": "example_limiter.max_keys",
                "flag": "--example-limiter-max-keys",
                "short": None,
                "help": "clients tracked at most",
            }
        ],
    }


def test_its_options_come_from_a_toml_file(plugin_site, run_python, tmp_path):
    config = tmp_path / "stelar.toml"
    config.write_text(
        '[stelar]\ntransports = ["memory"]\nrate_limiter = "fixed-window"\n'
        "[stelar.rate_limit]\nmax_points = 5\nwindow = 60\n"
        "[stelar.example_limiter]\nmax_keys = 2\n"
    )
    result = run_python(
        plugin_site,
        f"""
        from stelar_core import StelarServer
        server = StelarServer.from_toml({str(config)!r})
        limiter = server.hub.limits.global_limiter
        for key in ("a", "b", "c"):
            limiter.check(key)
        options = server.get_config()["example_limiter"]
        print(type(limiter).__name__, limiter.max_keys, limiter.size(), options)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "FixedWindowLimiter 2 2 {'max_keys': 2}"


def test_its_options_come_from_stelar_serve_flags_and_are_validated(plugin_site, run_python):
    helped = run_python(plugin_site, "from stelar_core.cli import main; main(['serve', '--help'])")
    assert "--example-limiter-max-keys" in helped.stdout
    bad = run_python(
        plugin_site,
        """
        from stelar_core.cli import main
        raise SystemExit(main(["serve", "--transport", "memory", "--example-limiter-max-keys", "0"]))
        """,
    )
    assert bad.returncode == 2
    assert "option 'example_limiter.max_keys' = 0 is invalid: expected an integer >= 1" in bad.stderr


def test_it_can_be_blocked_by_environment_variable(plugin_site, run_python):
    result = run_python(
        plugin_site,
        """
        import os
        os.environ["STELAR_BLOCK_PLUGINS"] = "example-limiter"
        from stelar_core import StelarServer
        StelarServer(transports=["memory"], rate_limiter="fixed-window")
        """,
    )
    assert result.returncode != 0
    assert "no rate limiter named 'fixed-window' is installed" in result.stderr


def test_without_the_distribution_the_name_is_unknown():
    from stelar_core import ConfigError, StelarServer

    with pytest.raises(ConfigError, match="no rate limiter named 'fixed-window'"):
        StelarServer(transports=["memory"], rate_limiter="fixed-window")
