"""The plugin layer: discovery through entry points, blocking, user hooks, provider selection."""

import pytest

from stelar_core import ConfigError, PluginError, StelarServer, hookimpl
from stelar_core.plugins import build_plugin_manager
from stelar_core.plugins.manager import (
    BLOCK_ENV,
    DISABLE_AUTOLOAD_ENV,
    discover_entry_points,
    user_hook_names,
)
from stelar_core.plugins.registry import all_registries

CORE_PLUGINS = {
    "core-brokers",
    "core-id-generators",
    "core-ip-tracker",
    "core-memory-transport",
    "core-token-bucket",
}


def test_core_defaults_come_from_stelar_core_entry_points():
    points = {p.name: p for p in discover_entry_points()}
    assert set(points) >= CORE_PLUGINS
    assert {points[name].dist.metadata["Name"] for name in CORE_PLUGINS} == {"stelar-core"}
    pm = build_plugin_manager()
    described = {info.name: info for info in pm.describe()}
    assert described["core-token-bucket"].distribution == "stelar-core"
    assert described["core-token-bucket"].hooks == ("stelar_register_rate_limiters",)
    registries = all_registries(pm)
    assert "token-bucket" in registries["rate limiter"].names()
    assert "memory" in registries["transport"].names()
    assert {"uuid4", "token"} <= set(registries["client ID generator"].names())


def test_each_server_gets_its_own_manager():
    a = StelarServer(transports=["memory"])
    b = StelarServer(transports=["memory"], hooks={"on_client_connect": lambda client_id: None})
    assert a.plugin_manager is not b.plugin_manager
    assert not a.plugin_manager.implements("stelar_on_client_connect")
    assert b.plugin_manager.implements("stelar_on_client_connect")


def test_blocking_by_option_removes_the_provider(monkeypatch):
    with pytest.raises(ConfigError, match="no rate limiter named 'token-bucket' is installed"):
        StelarServer(transports=["memory"], block_plugins=["core-token-bucket"])


def test_blocking_by_environment_variable(monkeypatch):
    monkeypatch.setenv(BLOCK_ENV, "core-id-generators, core-brokers")
    pm = build_plugin_manager()
    names = {info.name for info in pm.describe()}
    assert "core-id-generators" not in names and "core-brokers" not in names
    assert "core-token-bucket" in names


def test_disabling_autoload_keeps_only_stelar_core(monkeypatch):
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    pm = build_plugin_manager()
    assert {info.distribution for info in pm.describe()} == {"stelar-core"}


def test_unknown_transport_lists_installed_and_names_the_distribution():
    with pytest.raises(ConfigError) as info:
        StelarServer(transports=["ws"], block_plugins=["ws"])
    message = str(info.value)
    assert "option 'transports': no transport named 'ws' is installed" in message
    assert "memory (stelar-core)" in message
    assert "pip install stelar-ws" in message


@pytest.mark.parametrize(
    ("options", "distribution"),
    [
        ({"port": 3000}, "stelar-ws"),
        ({"allowed_origins": ["https://a"]}, "stelar-ws"),
        ({"ws": {"port": 1}}, "stelar-ws"),
        ({"tcp_port": 0}, "stelar-tcp"),
        ({"health_endpoint": "/h"}, "stelar-health"),
    ],
)
def test_an_option_of_a_plugin_not_installed_names_the_distribution(options, distribution):
    blocked = ["ws", "tcp", "health"]
    with pytest.raises(
        ConfigError, match=f"belongs to a plugin that is not installed.*pip install {distribution}"
    ):
        StelarServer(transports=["memory"], block_plugins=blocked, **options)


def test_unknown_provider_names_list_what_is_installed():
    with pytest.raises(
        ConfigError, match=r"option 'rate_limiter': no rate limiter named 'leaky'.*token-bucket"
    ):
        StelarServer(transports=["memory"], rate_limiter="leaky")
    with pytest.raises(
        ConfigError, match=r"option 'id_generator': .*installed: token \(stelar-core\), uuid4"
    ):
        StelarServer(transports=["memory"], id_generator="snowflake")
    with pytest.raises(ConfigError, match="option 'transports': no transport named 'carrier-pigeon'"):
        StelarServer(transports=["carrier-pigeon"])


def test_no_transport_at_all_says_what_to_do():
    with pytest.raises(ConfigError, match=r"no transport configured.*stelar-ws.*stelar-tcp"):
        StelarServer(port=None)


class ShortIds:
    """A plugin passed in code; it takes the name of a built-in provider and wins."""

    name = "short-ids"

    @hookimpl
    def stelar_register_id_generators(self, register):
        register("uuid4", lambda context: lambda: "always-the-same")


def test_a_plugin_in_code_wins_over_a_builtin_of_the_same_name():
    server = StelarServer(transports=["memory"], plugins=[ShortIds()])
    assert server.hub.id_generator() == "always-the-same"
    assert server.providers["client ID generator"].get("uuid4", "id_generator").plugin == "short-ids"


def test_user_hooks_mapping_is_one_plugin_with_only_named_arguments():
    seen = []
    server = StelarServer(
        transports=["memory"], hooks={"on_client_connect": lambda client_id: seen.append(client_id)}
    )
    server.plugin_manager.hook.stelar_on_client_connect(
        server=server, client_id="c1", ip="x", protocol="memory", metadata={}
    )
    assert seen == ["c1"]
    assert "user-hooks" in {info.name for info in server.plugin_manager.describe()}


def test_unknown_user_hook_names_the_known_ones():
    with pytest.raises(
        PluginError, match=r"unknown hook 'onClientConnect' in hooks; known hooks: .*on_client_connect"
    ):
        StelarServer(transports=["memory"], hooks={"onClientConnect": print})
    assert "on_rate_limit_exceeded" in user_hook_names()
    # the seed's, stelar-redis's, TLS refusals, invalid payloads, expired sessions, presence
    assert len(user_hook_names()) == 22


def test_user_hook_with_an_argument_the_hook_does_not_have_fails_loudly():
    with pytest.raises(Exception, match="clientId"):
        StelarServer(transports=["memory"], hooks={"on_client_connect": lambda clientId: None})


def test_async_event_hooks_are_refused():
    async def on_client_connect(client_id):
        return None

    with pytest.raises(PluginError, match="stelar_on_client_connect is 'async def'"):
        StelarServer(transports=["memory"], hooks={"on_client_connect": on_client_connect})


class Misspelled:
    @hookimpl
    def stelar_on_client_conect(self, client_id):
        return None


def test_a_misspelled_hook_implementation_fails_loudly():
    with pytest.raises(PluginError, match="stelar_on_client_conect"):
        StelarServer(transports=["memory"], plugins=[Misspelled()])


class Routes:
    name = "routes"
    seen: list[object] = []

    @hookimpl
    def stelar_register_http_routes(self, register, context):
        self.seen.append(context)
        register("/ping", lambda request: None)


def test_http_routes_are_collected_for_transports():
    server = StelarServer(transports=["memory"], plugins=[Routes()])
    assert "/ping" in server.hub.http_routes
    assert server.hub.http_routes["/ping"].methods == ("GET",)
    context = Routes.seen[-1]
    assert context.server is server.view
    assert context.section == "routes"


def test_two_plugins_claiming_one_route_is_an_error_naming_both():
    class Again(Routes):
        name = "again"

    both = "plugins 'again' and 'routes' both register the HTTP route '/ping'"
    with pytest.raises(PluginError, match=both):
        StelarServer(transports=["memory"], plugins=[Routes(), Again()])


@pytest.mark.parametrize(
    ("path", "handler", "message"),
    [
        ("ping", lambda request: None, "path must start with '/', got 'ping'"),
        ("/ping", "not a function", "the handler of HTTP route '/ping' is not callable"),
    ],
)
def test_a_bad_route_registration_names_the_plugin(path, handler, message):
    class Bad:
        name = "bad"

        @hookimpl
        def stelar_register_http_routes(self, register):
            register(path, handler)

    with pytest.raises(PluginError, match=f"plugin 'bad': .*{message}"):
        StelarServer(transports=["memory"], plugins=[Bad()])


def test_the_old_route_arguments_still_work_with_a_deprecation_warning():
    class Old:
        name = "old"

        @hookimpl
        def stelar_register_http_routes(self, register, server, section):
            register("/old", lambda request: None)
            assert section == "old"

    with pytest.warns(DeprecationWarning, match="names server, section; use context.server, context.section"):
        server = StelarServer(transports=["memory"], plugins=[Old()])
    assert "/old" in server.hub.http_routes


@pytest.mark.parametrize(
    ("option", "name"), [("broker", "redis"), ("rate_limiter", "redis"), ("ip_tracker", "redis")]
)
def test_a_missing_provider_names_its_distribution(option, name):
    with pytest.raises(ConfigError) as info:
        StelarServer(transports=["memory"], block_plugins=["redis"], **{option: name})
    assert "is installed; installed:" in str(info.value)
    assert "pip install stelar-redis" in str(info.value)


class _Broker:
    async def start(self, port):
        pass

    def publish(self, delivery):
        pass

    async def stop(self):
        pass


def _offering(plugin_name):
    class Offers:
        name = plugin_name

        @hookimpl
        def stelar_register_brokers(self, register):
            register("shared", lambda context: _Broker())

    return Offers()


def test_two_plugins_registering_one_provider_name_is_an_error_naming_both():
    with pytest.raises(PluginError) as info:
        StelarServer(transports=["memory"], plugins=[_offering("one"), _offering("two")])
    message = str(info.value)
    assert "'two' (passed in code) and 'one' (passed in code) both register the broker 'shared'" in message
    assert "plugin_choice={'broker:shared': 'two'}" in message


@pytest.mark.parametrize("chosen", ["one", "two"])
def test_plugin_choice_picks_which_plugin_provides_a_contested_name(chosen):
    server = StelarServer(
        transports=["memory"],
        plugins=[_offering("one"), _offering("two")],
        plugin_choice={"broker:shared": chosen},
        broker="shared",
    )
    assert server.providers["broker"].get("shared", "broker").plugin == chosen


def test_a_plugin_choice_naming_a_plugin_that_does_not_offer_the_name_says_who_does():
    with pytest.raises(ConfigError, match="'broker:shared' names plugin 'three', which does not register"):
        StelarServer(
            transports=["memory"],
            plugins=[_offering("one"), _offering("two")],
            plugin_choice={"broker:shared": "three"},
        )


@pytest.mark.parametrize("bad", [{"shared": "one"}, ["broker:shared"], {"broker:shared": 3}])
def test_a_malformed_plugin_choice_is_refused(bad):
    with pytest.raises(ConfigError, match="option 'plugin_choice'"):
        StelarServer(transports=["memory"], plugin_choice=bad)


def test_a_plugin_may_take_a_name_a_built_in_offers():
    class Local:
        name = "mine"

        @hookimpl
        def stelar_register_brokers(self, register):
            register("local", lambda context: _Broker())

    server = StelarServer(transports=["memory"], plugins=[Local()])
    assert server.providers["broker"].get("local", "broker").plugin == "mine"


def test_the_hook_name_constants_are_exactly_the_event_hookspecs():
    from stelar_core.hub.hooks import Hook
    from stelar_core.plugins import hookspecs

    specs = {name for name in dir(hookspecs) if name.startswith("stelar_on_")}
    constants = {name: value for name, value in vars(Hook).items() if not name.startswith("_")}
    assert set(constants.values()) == specs
    for name, value in constants.items():
        assert value == "stelar_on_" + name.lower()
