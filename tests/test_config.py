"""Every option is validated at construction, with a message naming option, value and rule."""

import attrs
import pytest

from stelar_core import ConfigError, RateLimit, ServerConfig, TLSConfig


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
        ("port", 70000, "option 'port' = 70000 is invalid: expected a port number 0..65535"),
        ("tcp_port", -1, "option 'tcp_port' = -1"),
        (
            "heartbeat_interval",
            0,
            "option 'heartbeat_interval' = 0 is invalid: expected a duration in seconds > 0",
        ),
        ("connect_timeout", -1.0, "option 'connect_timeout' = -1.0"),
        ("ack_timeout", "5", "option 'ack_timeout' = '5'"),
        ("shutdown_timeout", 0, "option 'shutdown_timeout' = 0"),
        ("graceful_shutdown", "yes", "'graceful_shutdown'"),
        ("path", "ws", "option 'path' = 'ws' is invalid: expected a URL path starting with '/'"),
        ("health_endpoint", "health", "option 'health_endpoint' = 'health'"),
        ("logger", "loud", "option 'logger' = 'loud' is invalid: expected one of debug, info, warn"),
        ("rate_limit", 5, "option 'rate_limit' = 5 is invalid: expected RateLimit"),
        ("rate_limit", {"max_points": 0}, "in option 'rate_limit': option 'max_points' = 0"),
        ("rate_limit", {"points": 5}, "unknown keys ['points']"),
        ("event_rate_limits", {"chat": {"max_points": 1, "window": 0}}, "event_rate_limits['chat']"),
        ("event_rate_limits", [1], "expected a mapping of event name to RateLimit"),
        ("rate_limiter", object(), "expected a rate limiter name or an object with methods check, reset"),
        ("rate_limiter", "", "expected the name of a rate limiter provider"),
        ("ip_tracker", object(), "missing check, add, remove, count"),
        (
            "id_generator",
            42,
            "option 'id_generator' = 42 is invalid: expected a client ID generator name or a callable",
        ),
        ("broker", object(), "missing start, publish, stop"),
        ("tls", {"cert": "c"}, "option 'tls'"),
        ("hooks", [1], "expected a mapping of hook name"),
    ],
)
def test_bad_values_name_option_value_and_rule(option, value, message):
    with pytest.raises(ConfigError) as info:
        ServerConfig(**{option: value})
    assert message in str(info.value)


def test_heartbeat_timeout_must_cover_the_interval():
    with pytest.raises(ConfigError, match="must be at least heartbeat_interval"):
        ServerConfig(heartbeat_interval=10, heartbeat_timeout=5)


def test_frame_size_must_hold_the_payload_size():
    with pytest.raises(ConfigError, match="must be at least max_payload_size"):
        ServerConfig(max_payload_size=1000, max_frame_size=500)


def test_unknown_option_suggests_the_close_one():
    with pytest.raises(ConfigError, match="unknown option 'max_conections'; did you mean 'max_connections'"):
        ServerConfig.from_mapping({"max_conections": 5})


def test_defaults_follow_the_seed():
    config = ServerConfig()
    assert config.max_connections == 10_000
    assert config.max_connections_per_ip == 50
    assert config.max_rooms_per_client == 50
    assert config.max_payload_size == 10 * 1024 * 1024
    assert config.rate_limit == RateLimit(100, 1.0)
    assert config.heartbeat_interval == 30.0
    assert config.heartbeat_timeout == 60.0
    assert config.health_endpoint == "/health"


def test_transports_follow_the_ports_unless_named():
    assert ServerConfig().transport_names == ("ws",)
    assert ServerConfig(port=None, tcp_port=3001).transport_names == ("tcp",)
    assert ServerConfig(tcp_port=0).transport_names == ("ws", "tcp")
    assert ServerConfig(transports="memory").transport_names == ("memory",)
    assert ServerConfig(port=None).transport_names == ()


def test_mappings_are_coerced_and_evolve_is_idempotent():
    config = ServerConfig(
        rate_limit={"max_points": 5, "window": 2}, event_rate_limits={"chat": {"max_points": 1}}
    )
    assert config.rate_limit == RateLimit(5, 2)
    assert config.event_rate_limits["chat"] == RateLimit(1, 1.0)
    assert attrs.evolve(config) == config
    assert ServerConfig(health_endpoint=False).health_endpoint is None
    assert ServerConfig(tls={"cert": "c.pem", "key": "k.pem"}).tls == TLSConfig("c.pem", "k.pem")


def test_read_from_toml_with_overrides(tmp_path):
    path = tmp_path / "stelar.toml"
    path.write_text(
        '[stelar]\nmax_connections = 7\ntransports = ["memory"]\n[stelar.rate_limit]\nmax_points = 3\n'
    )
    config = ServerConfig.from_toml(path, max_rooms=9)
    assert (config.max_connections, config.max_rooms, config.rate_limit) == (7, 9, RateLimit(3, 1.0))


def test_toml_errors_name_the_file_and_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("max_connections = [")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        ServerConfig.from_toml(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("max_romos = 3\n")
    with pytest.raises(ConfigError, match="unknown option 'max_romos'; did you mean 'max_rooms'"):
        ServerConfig.from_toml(unknown)
    with pytest.raises(ConfigError, match="cannot read config file"):
        ServerConfig.from_toml(tmp_path / "missing.toml")


def test_redacted_hides_secrets():
    config = ServerConfig(
        tls={"cert": "c.pem", "key": "k.pem"},
        plugin_options={"redis": {"url": "redis://x", "password": "hunter2"}},
        hooks={"on_client_connect": print},
    )
    data = config.redacted()
    assert data["tls"] == {"cert": "c.pem", "key": "***"}
    assert data["plugin_options"] == {"redis": {"url": "redis://x", "password": "***"}}
    assert data["hooks"] == ["on_client_connect"]
    assert "hunter2" not in repr(data)
