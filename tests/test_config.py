"""Every option is validated at construction, with a message naming option, value and rule:
the core's, the plugins' (through their short forms and their sections) and the providers'."""

import attrs
import pytest
import trustme
from tls_support import write_leaf

from stelar_core import ConfigError, RateLimit, ServerConfig, StelarServer


def build(**options):
    """The configuration a server builds from ``options`` (in-process transport unless named)."""
    options.setdefault("transports", ["memory"])
    return StelarServer(**options).config


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_connections", 0, "option 'max_connections' = 0 is invalid: expected an integer >= 1"),
        ("max_connections", "10", "option 'max_connections' = '10' is invalid"),
        ("max_connections", True, "option 'max_connections' = True is invalid"),
        ("max_connections_per_ip", -1, "option 'max_connections_per_ip' = -1"),
        ("max_rooms", 0, "option 'max_rooms' = 0"),
        ("max_rooms_per_client", 1.5, "option 'max_rooms_per_client' = 1.5"),
        ("max_payload_size", -1, "option 'max_payload_size' = -1"),
        ("max_frame_size", 8, "expected an integer >= 16"),
        ("max_pending_acks", 0, "option 'max_pending_acks' = 0"),
        ("max_queued_messages", 0, "option 'max_queued_messages' = 0"),
        ("max_event_name_length", 70000, "the wire allows at most 65535"),
        ("port", 70000, "option 'ws.port' = 70000 is invalid: expected a port number 0..65535"),
        ("tcp_port", -1, "option 'tcp.port' = -1"),
        (
            "heartbeat_interval",
            0,
            "option 'heartbeat_interval' = 0 is invalid: expected a duration in seconds > 0",
        ),
        ("connect_timeout", -1.0, "option 'connect_timeout' = -1.0"),
        ("ack_timeout", "5", "option 'ack_timeout' = '5'"),
        ("shutdown_timeout", 0, "option 'shutdown_timeout' = 0"),
        ("graceful_shutdown", "yes", "'graceful_shutdown'"),
        ("path", "ws", "option 'ws.path' = 'ws' is invalid: expected a URL path starting with '/'"),
        ("health_endpoint", "health", "option 'health.endpoint' = 'health'"),
        ("logger", "loud", "option 'logger' = 'loud' is invalid: expected one of debug, info, warn"),
        ("rate_limit", 5, "option 'rate_limit' = 5 is invalid: expected RateLimit"),
        ("rate_limit", {"max_points": 0}, "in option 'rate_limit': option 'max_points' = 0"),
        ("rate_limit", {"points": 5}, "unknown keys ['points']"),
        ("event_rate_limits", {"chat": {"max_points": 1, "window": 0}}, "event_rate_limits['chat']"),
        ("event_rate_limits", [1], "expected a mapping of event name to RateLimit"),
        ("rate_limiter", object(), "the rate limiter object has no method check; expected check(key"),
        ("rate_limiter", "", "expected the name of a rate limiter provider"),
        ("ip_tracker", object(), "the IP tracker object has no method check; expected check(ip"),
        ("id_generator", 42, "option 'id_generator': the client ID generator int has no method __call__"),
        ("broker", object(), "the broker object has no method start"),
        ("tls", {"cert": 5}, "option 'tls.cert' = 5 is invalid: expected a path or PEM contents"),
        ("ws", {"prot": 1}, "unknown option of plugin section 'ws' 'prot'; did you mean 'port'?"),
        ("ws", 5, "option 'ws' = 5 is invalid: expected a mapping of the 'ws' plugin's options"),
        ("hooks", [1], "expected a mapping of hook name"),
    ],
)
def test_bad_values_name_option_value_and_rule(option, value, message):
    with pytest.raises(ConfigError) as info:
        build(**{option: value})
    assert message in str(info.value)


def test_heartbeat_timeout_must_cover_the_interval():
    with pytest.raises(ConfigError, match="must be at least heartbeat_interval"):
        ServerConfig(heartbeat_interval=10, heartbeat_timeout=5)


def test_frame_size_must_hold_the_payload_size():
    with pytest.raises(ConfigError, match="must be at least max_payload_size"):
        ServerConfig(max_payload_size=1000, max_frame_size=500)


def test_unknown_option_suggests_the_close_one():
    with pytest.raises(ConfigError, match="unknown option 'max_conections'; did you mean 'max_connections'"):
        build(max_conections=5)


def test_defaults_follow_the_seed():
    config = build()
    assert config.max_connections == 10_000
    assert config.max_connections_per_ip == 50
    assert config.max_rooms_per_client == 50
    assert config.max_payload_size == 10 * 1024 * 1024
    assert config.rate_limit == RateLimit(100, 1.0)
    assert config.heartbeat_interval == 30.0
    assert config.heartbeat_timeout == 60.0
    assert config.plugin("health").endpoint == "/health"
    assert config.plugin("ws").port == 3000 and config.plugin("tcp").port is None


def names(**options):
    return [transport.name for transport in StelarServer(**options).transports]


def test_transports_follow_the_ports_unless_named():
    assert names() == ["ws"]
    assert names(port=None, tcp_port=3001) == ["tcp"]
    assert names(tcp_port=0) == ["ws", "tcp"]
    assert names(ws={"port": None}, tcp={"port": 0}, health_port=0) == ["tcp", "http"]
    assert names(transports="memory") == ["memory"]
    with pytest.raises(ConfigError, match="no transport configured"):
        names(port=None)


def test_a_section_entry_wins_over_the_short_form():
    assert build(port=1, ws={"port": 2}).plugin("ws").port == 2


def test_mappings_are_coerced_and_evolve_is_idempotent():
    config = ServerConfig(
        rate_limit={"max_points": 5, "window": 2}, event_rate_limits={"chat": {"max_points": 1}}
    )
    assert config.rate_limit == RateLimit(5, 2)
    assert config.event_rate_limits["chat"] == RateLimit(1, 1.0)
    assert attrs.evolve(config) == config
    assert build(health_endpoint=False).plugin("health").endpoint is None
    origins = build(allowed_origins=["https://a"]).plugins
    assert origins["ws"].allowed_origins == origins["health"].allowed_origins == ("https://a",)  # two plugins


def test_read_from_toml_with_overrides(tmp_path):
    path = tmp_path / "stelar.toml"
    path.write_text(
        '[stelar]\nmax_connections = 7\ntransports = ["memory"]\nallowed_origins = ["https://a"]\n'
        '[stelar.rate_limit]\nmax_points = 3\n[stelar.ws]\npath = "/live"\n'
    )
    config = StelarServer.from_toml(path, max_rooms=9).config
    assert (config.max_connections, config.max_rooms, config.rate_limit) == (7, 9, RateLimit(3, 1.0))
    assert config.plugin("ws").path == "/live" and config.plugin("ws").allowed_origins == ("https://a",)


def test_toml_errors_name_the_file_and_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("max_connections = [")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        StelarServer.from_toml(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("max_romos = 3\n")
    with pytest.raises(ConfigError, match="unknown option 'max_romos'; did you mean 'max_rooms'"):
        StelarServer.from_toml(unknown)
    with pytest.raises(ConfigError, match="cannot read config file"):
        StelarServer.from_toml(tmp_path / "missing.toml")


def test_get_config_hides_secrets(tmp_path):
    leaf = trustme.CA().issue_cert("localhost")
    cert, key = write_leaf(leaf, tmp_path / "c.pem", tmp_path / "k.pem")
    server = StelarServer(
        transports=["memory"], tls={"cert": cert, "key": key}, hooks={"on_client_connect": print}
    )
    data = server.get_config()
    assert data["tls"]["cert"] == cert and data["tls"]["key"] == "***"
    assert data["hooks"] == ["on_client_connect"]
    assert "k.pem" not in repr(data)


def test_a_built_config_starts_another_server_with_its_plugin_options():
    first = StelarServer(transports=["memory"], path="/live", tcp_port=0)
    second = StelarServer(first.config, max_rooms=7)
    assert second.config.plugin("ws").path == "/live" and second.config.plugin("tcp").port == 0
    assert second.config.max_rooms == 7
    third = StelarServer(first.config, block_plugins=["tcp"])  # a plugin fewer: its section goes
    assert "tcp" not in third.config.plugins and third.config.plugin("ws").path == "/live"
