"""The seams third parties build on: veto hooks that do not depend on plugin order, providers
built from a typed context and checked against their protocol, plugins' own options."""

import logging

import pytest

from stelar_core import ConfigError, ErrorCode, PluginError, StelarServer, hookimpl
from stelar_core.plugins.options import OptionDeclarations
from stelar_core.providers import IPTracker, LimiterContext, ProviderContext, check_provider
from stelar_core.testing import connect_client
from stelar_core.validation import integer


class Answers:
    """A plugin answering every veto hook with ``answer`` (or raising when it is an exception)."""

    def __init__(self, name, answer, asked):
        self.name = name
        self._answer = answer
        self._asked = asked

    def _reply(self, hook):
        self._asked.append((self.name, hook))
        if isinstance(self._answer, Exception):
            raise self._answer
        return self._answer

    @hookimpl
    def stelar_on_client_join_room(self):
        return self._reply("join")

    @hookimpl
    def stelar_on_client_leave_room(self):
        return self._reply("leave")

    @hookimpl
    def stelar_on_before_broadcast(self):
        return self._reply("broadcast")

    @hookimpl
    def stelar_on_rate_limit_exceeded(self):
        return self._reply("rate_limit")


# Only "spam" is limited (1 an hour), so the round trips that check the outcome are not.
ONE_SPAM = {"rate_limit": None, "event_rate_limits": {"spam": {"max_points": 1, "window": 3600}}}


async def veto_outcomes(server):
    """(joined, broadcast reached, kept connected after a rate limit) for one server."""
    client = await connect_client(server)
    joined = (await client.join("room")).get("ok") is True
    server.broadcast("news", 1)
    client.emit("spam")
    client.emit("spam")  # over the limit of 1
    code, _ = await client.next_error()
    assert code == ErrorCode.RATE_LIMITED
    events = [event.event for event in client.pending_events()]
    kept = not client.closed.done()
    if kept:
        # A round trip proves the connection is still served.
        server.on_ack("still", lambda ctx: "here")
        assert await client.request("still") == "here"
    client.close()
    return joined, "news" in events, kept


@pytest.mark.parametrize("order", ["allow-first", "refuse-first"])
async def test_any_false_refuses_whatever_the_registration_order(stelar_server_factory, order):
    asked = []
    allow, refuse = Answers("allow", True, asked), Answers("refuse", False, asked)
    plugins = [allow, refuse] if order == "allow-first" else [refuse, allow]
    server = await stelar_server_factory(plugins=plugins, **ONE_SPAM)
    joined, broadcast_reached, kept = await veto_outcomes(server)
    assert (joined, broadcast_reached, kept) == (False, False, True)
    # Every implementation was asked, not just the first to answer.
    for hook in ("join", "broadcast", "rate_limit"):
        assert {name for name, asked_hook in asked if asked_hook == hook} == {"allow", "refuse"}


@pytest.mark.parametrize("order", ["allow-first", "raise-first"])
async def test_an_implementation_that_raises_refuses_and_is_counted(stelar_server_factory, order, caplog):
    asked = []
    allow, broken = Answers("allow", True, asked), Answers("broken", RuntimeError("bug"), asked)
    plugins = [allow, broken] if order == "allow-first" else [broken, allow]
    server = await stelar_server_factory(plugins=plugins, **ONE_SPAM)
    assert await veto_outcomes(server) == (False, False, True)
    assert server.get_stats().counters["hook_errors"] == 3  # join, broadcast, rate limit
    assert "hook stelar_on_client_join_room of plugin broken raised" in caplog.text
    assert {name for name, _ in asked} == {"allow", "broken"}


async def test_all_allowing_lets_everything_through(stelar_server_factory):
    asked = []
    plugins = [Answers("a", True, asked), Answers("b", None, asked)]
    server = await stelar_server_factory(plugins=plugins, **ONE_SPAM)
    joined, reached, kept = await veto_outcomes(server)
    assert (joined, reached, kept) == (True, True, False)  # rate limit: disconnected by default


async def test_a_raising_notification_hook_does_not_stop_the_others(stelar_server_factory):
    seen = []

    class Broken:
        name = "broken"

        @hookimpl
        def stelar_on_client_connect(self, client_id):
            raise RuntimeError("bug")

    class Watcher:
        name = "watcher"

        @hookimpl
        def stelar_on_client_connect(self, client_id):
            seen.append(client_id)

    for plugins in ([Broken(), Watcher()], [Watcher(), Broken()]):
        seen.clear()
        server = await stelar_server_factory(plugins=plugins)
        client = await connect_client(server)
        assert seen == [client.id]
        assert server.get_stats().counters["hook_errors"] == 1


def test_registration_goes_through_pluggy_and_is_traced(monkeypatch, caplog):
    monkeypatch.setenv("STELAR_TRACE_PLUGINS", "1")
    caplog.set_level(logging.DEBUG, logger="stelar.plugins")
    StelarServer(transports=["memory"])
    for hook in ("stelar_add_options", "stelar_register_rate_limiters", "stelar_register_transports"):
        assert hook in caplog.text


# ---------------------------------------------------------------- providers and their protocols


class SeedTracker:
    """The seed's IP tracker: ``check(ip)`` without the limit the hub passes."""

    def check(self, ip):
        return True

    def add(self, ip):
        pass

    def remove(self, ip):
        pass

    def count(self, ip):
        return 0


def test_a_provider_object_with_a_wrong_signature_fails_at_construction():
    with pytest.raises(ConfigError) as info:
        StelarServer(transports=["memory"], ip_tracker=SeedTracker())
    message = str(info.value)
    assert "option 'ip_tracker'" in message
    assert "SeedTracker.check(ip)" in message
    assert "expected check(ip: 'str', limit: 'int')" in message


def test_a_provider_object_missing_a_method_names_it():
    class NoCount(SeedTracker):
        def check(self, ip, limit):
            return True

        count = None

    with pytest.raises(ConfigError, match=r"the IP tracker NoCount has no method count; expected count\(ip"):
        StelarServer(transports=["memory"], ip_tracker=NoCount())


def test_a_provider_selected_by_name_is_checked_too():
    class Registers:
        name = "bad-tracker"

        @hookimpl
        def stelar_register_ip_trackers(self, register):
            register("seed", lambda context: SeedTracker())

    with pytest.raises(ConfigError, match=r"SeedTracker\.check\(ip\) cannot be called as the hub calls it"):
        StelarServer(transports=["memory"], ip_tracker="seed", plugins=[Registers()])


def test_a_factory_of_the_old_signature_names_the_context_it_must_take():
    class OldStyle:
        name = "old-style"

        @hookimpl
        def stelar_register_ip_trackers(self, register):
            register("old", SeedTracker)  # called with no context before

    with pytest.raises(PluginError, match=r"factory 'old' failed.*factory\(context: ProviderContext\)"):
        StelarServer(transports=["memory"], ip_tracker="old", plugins=[OldStyle()])


def test_check_provider_accepts_extra_optional_parameters_and_async_methods():
    class Flexible:
        async def check(self, ip, limit, *, note=None):
            return True

        def add(self, ip, extra=1):
            pass

        def remove(self, *args):
            pass

        def count(self, ip):
            return 0

    check_provider(Flexible(), IPTracker, "IP tracker", "ip_tracker")


# ---------------------------------------------------------------- plugins' own options


class Quota:
    """A plugin with options of its own and a limiter that uses them."""

    name = "quota"

    def __init__(self):
        self.contexts = []

    @hookimpl
    def stelar_add_options(self, options: OptionDeclarations):
        options.add("burst", default=2, type=int, check=integer(1), help="extra points", restart=False)
        options.add("label", default="q", type=str, help="a name", short="quota_label")
        options.add("api_key", type=str, help="a secret")

    @hookimpl
    def stelar_register_rate_limiters(self, register):
        def build(context: LimiterContext):
            self.contexts.append(context)
            from stelar_core.builtins.token_bucket import TokenBucketLimiter
            from stelar_core.config import RateLimit

            return TokenBucketLimiter(RateLimit(context.limit.max_points + context.options.burst, 60))

        register("quota", build)


def test_a_plugin_section_reaches_its_factories_validated():
    plugin = Quota()
    server = StelarServer(
        transports=["memory"],
        rate_limiter="quota",
        rate_limit={"max_points": 1},
        quota={"burst": 4, "api_key": "s3cret"},
        quota_label="mine",
        plugins=[plugin],
    )
    (context,) = plugin.contexts
    assert isinstance(context, ProviderContext) and context.section == "quota"
    assert dict(context.options) == {"burst": 4, "label": "mine", "api_key": "s3cret"}
    assert context.limit.max_points == 1 and context.config is server.config
    data = server.get_config()
    assert data["quota"] == {"burst": 4, "label": "mine", "api_key": "***"}
    assert data["quota_label"] == "mine"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"quota": {"burst": 0}}, "option 'quota.burst' = 0 is invalid: expected an integer >= 1"),
        ({"quota": {"brust": 3}}, "unknown option of plugin section 'quota' 'brust'; did you mean 'burst'?"),
        ({"quota_lable": "x"}, "unknown option 'quota_lable'; did you mean 'quota_label'?"),
        ({"quota": {"label": 5}}, "option 'quota.label' = 5 is invalid: expected str"),
    ],
)
def test_bad_plugin_options_name_the_option(options, message):
    with pytest.raises(ConfigError) as info:
        StelarServer(transports=["memory"], plugins=[Quota()], **options)
    assert message in str(info.value)


def test_update_config_changes_live_plugin_options_and_refuses_the_rest():
    server = StelarServer(transports=["memory"], plugins=[Quota()])
    server.update_config(quota={"burst": 7})
    assert server.config.plugin("quota").burst == 7
    with pytest.raises(ConfigError, match=r"quota\.label cannot change on a built server"):
        server.update_config(quota_label="other", quota={"burst": 8})
    assert server.config.plugin("quota").burst == 7  # all or nothing
    with pytest.raises(ConfigError, match=r"'quota\.burst' = -1"):
        server.update_config(quota={"burst": -1})


def test_a_bad_declaration_is_a_plugin_error():
    class Twice:
        name = "twice"

        @hookimpl
        def stelar_add_options(self, options):
            options.add("x", default=1, type=int)
            options.add("x", default=2, type=int)

    with pytest.raises(PluginError, match="section 'twice' declares option 'x' twice"):
        StelarServer(transports=["memory"], plugins=[Twice()])

    class BadDefault:
        name = "bad-default"

        @hookimpl
        def stelar_add_options(self, options):
            options.add("n", default="many", type=int)

    with pytest.raises(PluginError, match=r"the default of option 'bad_default\.n' is invalid"):
        StelarServer(transports=["memory"], plugins=[BadDefault()])


async def test_hooks_receive_a_narrow_view_of_the_server(stelar_server_factory):
    seen = []

    class Greeter:
        name = "greeter"

        @hookimpl
        def stelar_on_client_connect(self, server, client_id):
            seen.append(server)
            server.to_id(client_id, "hello", {"clients": len(server.get_clients())})

    server = await stelar_server_factory(plugins=[Greeter()])
    client = await connect_client(server)
    assert (await client.next_event()).data == {"clients": 1}
    (view,) = seen
    assert view.state == "running" and view.addresses == server.addresses
    for internal in ("hub", "plugin_manager", "update_config", "on"):
        assert not hasattr(view, internal)


def test_options_are_read_only_and_copy_as_values():
    import copy
    import pickle

    from stelar_core.plugins.options import Options

    options = Options("ws", {"port": 1, "path": "/"})
    assert options.port == options["port"] == 1 and dict(options) == {"port": 1, "path": "/"}
    with pytest.raises(AttributeError, match="read-only"):
        options.port = 2
    with pytest.raises(AttributeError, match="section 'ws' has no option 'prot'"):
        options.prot  # noqa: B018
    assert copy.deepcopy(options) == pickle.loads(pickle.dumps(options)) == options


@pytest.mark.parametrize(("plugin_name", "short"), [("hooks", None), ("shadow", "max_rooms")])
def test_a_plugin_may_not_shadow_a_core_option(plugin_name, short):
    class Shadow:
        name = plugin_name

        @hookimpl
        def stelar_add_options(self, options):
            options.add("x", default=1, type=int, short=short)

    with pytest.raises(PluginError, match=r"is named '(hooks|max_rooms)', a core option"):
        StelarServer(transports=["memory"], plugins=[Shadow()])
