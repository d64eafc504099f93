"""The ``stelar`` command, run as a real process."""

import asyncio
import signal
import sys
import textwrap

import pytest

from stelar_core import RateLimit, compiled
from stelar_core.cli import main
from stelar_core.errors import StelarError


async def start_serving(*args, cwd=None):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stelar_core.cli",
        "serve",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    return process, line.decode()


async def stop(process):
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), 30)
    return process.returncode


def test_serve_without_a_network_transport_names_the_distributions(capsys, monkeypatch):
    monkeypatch.setenv("STELAR_BLOCK_PLUGINS", "tcp,ws")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "no network transport is installed: pip install stelar-ws" in err and "stelar-tcp" in err


def test_serve_asks_for_the_distribution_of_a_requested_transport(capsys, monkeypatch):
    monkeypatch.setenv("STELAR_BLOCK_PLUGINS", "tcp")
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--tcp-port", "0"])
    assert exit_info.value.code == 2
    assert "--tcp-port belongs to a plugin that is not installed" in capsys.readouterr().err
    assert main(["serve", "--transport", "tcp"]) == 2
    assert "pip install stelar-tcp" in capsys.readouterr().err


async def test_serve_listens_on_every_installed_network_transport_by_default():
    process, line = await start_serving("--tcp-port", "0")
    assert line.startswith("stelar: tcp listening on tcp://127.0.0.1:")
    # uvloop: installed here, so chosen by default; the hot path as this process has it too.
    assert line.endswith(f"(event loop: uvloop; hot path: {compiled.describe()})\n")
    assert await stop(process) == 0


async def test_serve_runs_on_the_event_loop_named():
    process, line = await start_serving("--tcp-port", "0", "--event-loop", "asyncio")
    assert line.endswith(f"(event loop: asyncio; hot path: {compiled.describe()})\n")
    assert await stop(process) == 0


def test_plugins_lists_the_core_defaults(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"hot path: {compiled.describe()}"
    assert "core-token-bucket  (stelar-core 0.1.0)" in out
    assert "providers: rate limiter:token-bucket" in out


async def test_serve_runs_the_relay_app_until_sigterm():
    process, line = await start_serving("--transport", "memory", "--max-connections", "5")
    assert line.startswith("stelar: memory listening on memory://")
    assert await stop(process) == 0


async def test_serve_runs_a_server_object_from_the_users_module(tmp_path):
    (tmp_path / "chat_app.py").write_text(
        textwrap.dedent("""
        from stelar_core import StelarServer
        server = StelarServer(transports=["memory"])
    """)
    )
    process, line = await start_serving("chat_app:server", cwd=tmp_path)
    assert "memory listening" in line
    assert await stop(process) == 0


async def test_serve_reads_a_config_file(tmp_path):
    config = tmp_path / "stelar.toml"
    config.write_text('transports = ["memory"]\nmax_connections = 3\n')
    process, line = await start_serving("--config", str(config))
    assert "memory listening" in line
    assert await stop(process) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "nocolon"], "APP must look like 'module:attribute'"),
        (["serve", "stelar_core:nothing_here"], "has no attribute 'nothing_here'"),
        (["serve", "stelar_core:__version__"], "must be a StelarServer or a function returning one"),
        (["serve", "--transport", "memory", "--max-connections", "0"], "option 'max_connections' = 0"),
    ],
)
def test_serve_reports_bad_input_clearly(capsys, args, message):
    assert main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "started"),
    [
        ({}, {"ws": {"port": 3000}, "tcp": {"port": 3001}}),  # each transport's serve default
        ({"max_connections": 5}, {"ws": {"port": 3000}, "tcp": {"port": 3001}, "max_connections": 5}),
        ({"tcp_port": 0}, {"tcp_port": 0, "transports": ["tcp"]}),  # named: only those
        (
            {"ws": {"port": 0}, "health_port": 0},
            {"ws": {"port": 0}, "health_port": 0, "transports": ["ws", "http"]},
        ),
        ({"transports": ["memory"]}, {"transports": ["memory"]}),
    ],
)
def test_the_relay_listens_on_what_is_named_else_on_each_network_transport(given, started):
    from stelar_core.commands.apps import _listeners

    assert _listeners(given) == started


def test_without_a_network_transport_the_relay_says_what_to_install(monkeypatch):
    from stelar_core.commands.apps import _listeners

    monkeypatch.setenv("STELAR_BLOCK_PLUGINS", "ws,tcp")
    with pytest.raises(StelarError, match="pip install stelar-ws"):
        _listeners({})


async def test_serve_with_a_health_port():
    process, first = await start_serving("--tcp-port", "0", "--health-port", "0")
    second = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    assert first.startswith("stelar: tcp listening on tcp://127.0.0.1:")
    assert second.startswith("stelar: http listening on http://127.0.0.1:")
    assert await stop(process) == 0


def test_serve_help_lists_the_installed_plugins_options(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = capsys.readouterr().out
    for flag in (
        "--port PORT",  # short forms, as the seed names them
        "--tcp-port PORT",
        "--allowed-origins ALLOWED_ORIGINS",
        "--health-endpoint ENDPOINT",
        "--ws-path PATH",  # each plugin's section
        "--ws-compression, --no-ws-compression",
        "--health-allowed-origins ALLOWED_ORIGINS",
        "--tls-cert CERT",  # stelar-tls
        "--tls-client-cert CLIENT_CERT",
        "--tls-self-signed, --no-tls-self-signed",
    ):
        assert flag in help_text, flag
    assert "(short for ws.port)" in help_text


def test_serve_flags_reach_the_plugins_sections(monkeypatch):
    from stelar_core.cli import _parser
    from stelar_core.commands.apps import build_server
    from stelar_core.commands.serve import serve_options
    from stelar_core.plugins.manager import build_plugin_manager
    from stelar_core.server.assembly import collect_options

    parser = _parser(collect_options(build_plugin_manager()))
    args = parser.parse_args(
        ["serve", "--port", "0", "--ws-path", "/rt", "--no-ws-compression", "--allowed-origins", "https://a"]
    )
    server = build_server(args.app, serve_options(args))
    ws = server.config.plugin("ws")
    assert (ws.port, ws.path, ws.compression, ws.allowed_origins) == (0, "/rt", False, ("https://a",))
    assert server.config.plugin("health").allowed_origins == ("https://a",)  # one short form, two plugins
    assert [transport.name for transport in server.transports] == ["ws"]


async def test_serve_reads_plugin_sections_from_the_config_file_and_flags_win(tmp_path):
    config = tmp_path / "stelar.toml"
    config.write_text('[stelar]\nmax_connections = 3\n\n[stelar.ws]\nport = 0\npath = "/from-file"\n')
    process, line = await start_serving("--config", str(config), "--ws-path", "/from-flag")
    assert line.startswith("stelar: ws listening on ws://127.0.0.1:") and "/from-flag " in line
    assert await stop(process) == 0


async def test_serve_with_a_development_certificate_prints_the_ca_file_clients_trust(tmp_path):
    from stelar_core import StelarClient

    folder = tmp_path / "tls"
    for start in ("first", "restart"):
        process, line = await start_serving(
            "--ws-port", "0", "--tls-self-signed", "--tls-self-signed-dir", str(folder)
        )
        assert line.startswith("stelar: ws listening on wss://127.0.0.1:")
        port = int(line.split("wss://127.0.0.1:")[1].split("/")[0])
        said = ""
        while "ca_file=" not in said:
            said = (await asyncio.wait_for(process.stderr.readline(), 10)).decode()
        ca_file = said.split("ca_file=")[1].strip()
        assert ca_file == str(folder / "ca.pem")
        if start == "first":
            authority = (folder / "ca.pem").read_bytes()
        else:
            assert (folder / "ca.pem").read_bytes() == authority  # trusted once, trusted after a restart
        async with StelarClient(f"wss://localhost:{port}", ca_file=ca_file, reconnection=False) as client:
            assert client.id
        assert await stop(process) == 0


async def test_serve_says_where_it_listens_once_per_listener():
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "stelar_core.cli", "serve", "--tcp-port", "0", "--port", "0"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    second = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    assert await stop(process) == 0
    rest, err = (await process.stdout.read()).decode(), (await process.stderr.read()).decode()
    assert first.startswith("stelar: ws listening on ws://127.0.0.1:")
    assert second.startswith("stelar: tcp listening on tcp://127.0.0.1:")
    assert "listening on" not in rest  # printed once...
    assert "listening on" not in err  # ...and not logged a second time


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--rate-limit", "1000/2"], {"rate_limit": RateLimit(1000, 2.0)}),
        (["--rate-limit", "500"], {"rate_limit": RateLimit(500, 1.0)}),
        (["--rate-limit", "off"], {"rate_limit": None}),
        (
            ["--event-rate-limit", "chat=5/1", "--event-rate-limit", "move=30/0.5"],
            {"event_rate_limits": {"chat": RateLimit(5, 1.0), "move": RateLimit(30, 0.5)}},
        ),
        ([], {}),
    ],
)
def test_serve_takes_the_rate_limits_as_flags(flags, expected):
    from stelar_core.cli import _parser
    from stelar_core.commands.apps import build_server
    from stelar_core.commands.serve import serve_options
    from stelar_core.plugins.manager import build_plugin_manager
    from stelar_core.server.assembly import collect_options

    args = _parser(collect_options(build_plugin_manager())).parse_args(["serve", "--port", "0", *flags])
    options = serve_options(args)
    assert {key: options[key] for key in ("rate_limit", "event_rate_limits") if key in options} == expected
    server = build_server(None, options)
    for key, value in expected.items():
        assert getattr(server.config, key) == value


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rate-limit", "many"], "argument --rate-limit: 'many' is not N/SECONDS (e.g. 1000/1) or off"),
        (["--rate-limit", "10/-1"], "argument --rate-limit: '10/-1' is not N/SECONDS"),
        (["--event-rate-limit", "chat"], "argument --event-rate-limit: 'chat' is not EVENT=N/SECONDS"),
        (["--event-rate-limit", "chat=off"], "'chat=off': an event's limit cannot be off"),
    ],
)
def test_a_bad_rate_limit_flag_says_what_is_expected(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_worker_supervisor_keeps_its_old_import_path_with_a_deprecation_warning():
    from stelar_core.commands.workers import run_workers
    from stelar_core.server import workers

    with pytest.warns(DeprecationWarning, match="moved to stelar_core.commands.workers.run_workers"):
        assert workers.run_workers is run_workers
    with pytest.raises(AttributeError):
        workers.Supervisor  # noqa: B018  (only run_workers is kept)
