"""Building the plugin manager of one server: discovery, blocking, user hooks, validation.

Discovery is an explicit step run when a server is built, never at import time, and each server
gets its own manager, so two servers in one process (or a test) never share plugins by accident.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

import attrs
import pluggy

from stelar_core.errors import PluginError
from stelar_core.plugins import hookspecs
from stelar_core.plugins.markers import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl

log = logging.getLogger("stelar.plugins")

BLOCK_ENV = "STELAR_BLOCK_PLUGINS"
DISABLE_AUTOLOAD_ENV = "STELAR_DISABLE_PLUGIN_AUTOLOAD"
TRACE_ENV = "STELAR_TRACE_PLUGINS"
CORE_DISTRIBUTION = "stelar-core"
USER_HOOKS_PLUGIN = "user-hooks"
_EVENT_HOOK_PREFIX = "stelar_on_"
# What a raising event-hook implementation answers: never None (no objection) nor True.
HOOK_FAILED = object()


@attrs.frozen(slots=True)
class PluginInfo:
    """What ``stelar plugins`` shows for one registered plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]


def user_hook_names() -> tuple[str, ...]:
    """Keys accepted in ``hooks={...}``: the event hooks without the ``stelar_`` prefix."""
    return tuple(
        name.removeprefix("stelar_") for name in dir(hookspecs) if name.startswith(_EVENT_HOOK_PREFIX)
    )


class StelarPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from and which hooks have callers."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, tuple[str, str]] = {}
        self._implemented: frozenset[str] | None = None
        # Called when an event-hook implementation raised (the server counts them).
        self.on_hook_error: Callable[[str, str], None] = lambda hook, plugin: None

    def register(self, plugin: object, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        self._implemented = None
        if registered is not None:
            _refuse_async_event_hooks(self, registered)
            _warn_deprecated_arguments(self, registered)
            self._guard_event_hooks(registered)
        return registered

    def _guard_event_hooks(self, name: str) -> None:
        """Wrap the plugin's event-hook implementations so that one raising is logged and
        reported to ``on_hook_error`` and answers :data:`HOOK_FAILED`, while pluggy goes on
        calling the others (it would stop at the first exception)."""
        plugin = self.get_plugin(name)
        for caller in self.get_hookcallers(plugin) or ():
            if not caller.name.startswith(_EVENT_HOOK_PREFIX):
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    # pluggy calls ``impl.function`` with the arguments named in ``impl.argnames``
                    # (read from the original function when it was registered); the attribute
                    # is typed Final but is a plain slot, replaced here once, at registration.
                    object.__setattr__(impl, "function", self._guarded(caller.name, name, impl.function))

    def _guarded(self, hook: str, plugin_name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any) -> Any:
            try:
                return function(*args)
            except Exception:
                log.exception("hook %s of plugin %s raised", hook, plugin_name)
                self.on_hook_error(hook, plugin_name)
                return HOOK_FAILED

        return guarded

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        removed = super().unregister(plugin, name)
        self._implemented = None
        return removed

    def implements(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name``: lets hot paths skip unused hooks for free."""
        if self._implemented is None:
            self._implemented = frozenset(
                name
                for name, caller in vars(self.hook).items()
                if isinstance(caller, pluggy.HookCaller) and caller.get_hookimpls()
            )
        return hook_name in self._implemented

    def describe(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:
                continue
            distribution, version = self.distributions.get(name, (None, None))
            hooks = tuple(sorted(caller.name for caller in self.get_hookcallers(plugin) or ()))
            infos.append(PluginInfo(name, distribution, version, hooks))
        return infos


def _refuse_async_event_hooks(pm: StelarPluginManager, name: str) -> None:
    plugin = pm.get_plugin(name)
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and inspect.iscoroutinefunction(inspect.unwrap(impl.function)):
                pm.unregister(name=name)
                raise PluginError(
                    f"plugin {name!r}: hook {caller.name} is 'async def', but stelar hooks are "
                    "synchronous; do async work in a task you start, or in a provider object"
                )


# hook -> arguments an implementation should no longer name, and what replaces them.
DEPRECATED_ARGUMENTS = {
    "stelar_register_http_routes": {"server": "context.server", "section": "context.section"},
}


def _warn_deprecated_arguments(pm: StelarPluginManager, name: str) -> None:
    plugin = pm.get_plugin(name)
    for caller in pm.get_hookcallers(plugin) or ():
        replaced = DEPRECATED_ARGUMENTS.get(caller.name, {})
        for impl in caller.get_hookimpls():
            old = [arg for arg in impl.argnames if arg in replaced] if impl.plugin is plugin else []
            if old:
                warnings.warn(
                    f"plugin {name!r}: {caller.name} names {', '.join(old)}; use "
                    f"{', '.join(replaced[arg] for arg in old)} (the old arguments go in a later release)",
                    DeprecationWarning,
                    stacklevel=3,
                )


def _blocked_names(block: Iterable[str]) -> set[str]:
    names = {name.strip() for name in os.environ.get(BLOCK_ENV, "").split(",") if name.strip()}
    return names | set(block)


def discover_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Entry points of the ``stelar`` group, sorted by (distribution, name) and de-duplicated
    (a distribution found twice on ``sys.path`` counts once)."""
    seen: set[tuple[str, str]] = set()
    found = []
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for point in sorted(points, key=lambda p: (_dist_name(p), p.name)):
        key = (_dist_name(point), point.name)
        if key not in seen:
            seen.add(key)
            found.append(point)
    return found


def _dist_name(point: importlib.metadata.EntryPoint) -> str:
    dist = point.dist
    return dist.metadata["Name"] if dist is not None else ""


class _UserHooks:
    """The plugin object of a ``hooks={...}`` mapping (hashable by identity, as pluggy needs)."""


def user_hooks_plugin(hooks: Mapping[str, Callable[..., Any]]) -> object:
    """Wrap a ``{"on_client_connect": fn, ...}`` mapping as one plugin.

    Each function keeps its own signature, so it receives only the arguments it names.
    """
    allowed = user_hook_names()
    namespace = _UserHooks()
    for key, function in hooks.items():
        if key not in allowed:
            raise PluginError(f"unknown hook {key!r} in hooks; known hooks: {', '.join(allowed)}")
        if not callable(function):
            raise PluginError(f"hook {key!r} must be callable, got {function!r}")
        wrapper = functools.wraps(function)(lambda *args, _f=function, **kwargs: _f(*args, **kwargs))
        # functools.wraps sets __wrapped__, so pluggy reads the user's own parameter names.
        setattr(namespace, f"stelar_{key}", hookimpl(wrapper))
    return namespace


def build_plugin_manager(
    *,
    plugins: Iterable[object] = (),
    hooks: Mapping[str, Callable[..., Any]] | None = None,
    block: Iterable[str] = (),
    load_entry_points: bool = True,
) -> StelarPluginManager:
    """The one place a server's plugin manager is made.

    Order: entry points (core defaults among them), then ``plugins`` passed in code, then the
    user's ``hooks`` mapping; later registrations are called first by pluggy, so user code wins.
    Blocked names (``block`` plus ``$STELAR_BLOCK_PLUGINS``) are never registered. With
    ``$STELAR_DISABLE_PLUGIN_AUTOLOAD`` set, only stelar-core's own entry points load.
    """
    pm = StelarPluginManager()
    blocked = _blocked_names(block)
    for name in blocked:
        pm.set_blocked(name)
    if load_entry_points:
        core_only = bool(os.environ.get(DISABLE_AUTOLOAD_ENV))
        for point in discover_entry_points():
            distribution = _dist_name(point)
            if point.name in blocked or (core_only and distribution != CORE_DISTRIBUTION):
                continue
            if pm.has_plugin(point.name):
                raise PluginError(
                    f"two plugins are named {point.name!r} (distribution {distribution}); "
                    "block one with STELAR_BLOCK_PLUGINS"
                )
            try:
                plugin = point.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {point.name!r} from distribution {distribution} failed to load: {exc!r}"
                ) from exc
            pm.register(plugin, name=point.name)
            version = point.dist.version if point.dist is not None else ""
            pm.distributions[point.name] = (distribution, version)
    for plugin in plugins:
        name = _plugin_name(plugin)
        if name not in blocked:
            pm.register(plugin, name=name)
    if hooks:
        pm.register(user_hooks_plugin(hooks), name=USER_HOOKS_PLUGIN)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from exc
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(lambda message: log.debug("%s", message.rstrip()))
        pm.enable_tracing()
    return pm


def _plugin_name(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    name = getattr(plugin, "name", None)
    return name if isinstance(name, str) else f"{type(plugin).__name__}-{id(plugin):x}"
