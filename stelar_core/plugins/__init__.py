"""The plugin layer: hook specifications, the per-server manager and provider registries."""

from stelar_core.plugins.manager import PluginInfo, StelarPluginManager, build_plugin_manager
from stelar_core.plugins.markers import ENTRY_POINT_GROUP, hookimpl, hookspec
from stelar_core.plugins.registry import Provider, ProviderRegistry, all_registries

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "Provider",
    "ProviderRegistry",
    "StelarPluginManager",
    "all_registries",
    "build_plugin_manager",
    "hookimpl",
    "hookspec",
]
