"""Options that plugins own (in the style of pytest's ``pytest_addoption``).

A plugin implements ``stelar_add_options(options)`` and declares each of its options with
``options.add(name, default=..., type=..., check=..., help=..., restart=..., short=...)``. The
options live in a *section* named after the plugin (``ws``, ``tcp``, ``health``, ``redis``) and
are given the same way everywhere:

* in Python: ``StelarServer(redis={"url": ...})``;
* in TOML: a ``[stelar.redis]`` table;
* on ``stelar serve``: ``--redis-url`` (flags are generated from the declarations);
* through ``get_config()`` / ``update_config(redis={...})``.

``short`` names a flat *short form* (the seed's ``port``, ``tcp_port``, ``allowed_origins``):
``StelarServer(port=3000)`` sets ``ws.port``. A short form may be claimed by several plugins
when it means the same to each (``allowed_origins`` sets the WebSocket origins and the health CORS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from stelar_core import validation
from stelar_core.errors import ConfigError, PluginError
from stelar_core.validation import Check
from stelar_core.values import Options as Options  # re-exported: its home until values.py

# The types a CLI flag can be generated for; options of other types (functions, objects) are
# given in Python or TOML only.
FLAG_TYPES: tuple[type, ...] = (int, float, str, bool, list)


def section_name(plugin_name: str) -> str:
    """A plugin's section: its name, usable as a Python keyword (``my-limiter`` -> ``my_limiter``)."""
    return plugin_name.replace("-", "_").replace(".", "_")


def _type_check(kind: type | None) -> Check | None:
    if kind is bool:
        return validation.boolean
    if kind is list:
        return validation.strings_or_none
    if kind in (int, float, str):

        def check(option: str, value: Any) -> Any:
            if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
                return value
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            raise validation.fail(option, value, f"expected {kind.__name__}")

        return check
    return None


@attrs.frozen(slots=True)
class OptionSpec:
    """One declared option of one plugin's section."""

    section: str
    name: str
    default: Any = None
    type: type | None = None
    check: Check | None = None
    help: str = ""
    restart: bool = True
    short: str | None = None
    secret: bool = False

    @property
    def qualified(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def flag(self) -> str:
        return "--" + f"{self.section}-{self.name}".replace("_", "-")

    @property
    def command_line_flag(self) -> str | None:
        """Its ``stelar serve`` flag, if it has one (options taking objects have none)."""
        return self.flag if self.type in FLAG_TYPES else None

    def validate(self, value: Any) -> Any:
        """The value as the plugin will see it; a bad one fails naming ``section.name``."""
        check = self.check or _type_check(self.type)
        return value if check is None else check(self.qualified, value)


class OptionDeclarations:
    """What ``stelar_add_options`` receives: adds options to the calling plugin's section."""

    def __init__(self, section: str) -> None:
        self.section = section
        self.specs: dict[str, OptionSpec] = {}

    def add(
        self,
        name: str,
        *,
        default: Any = None,
        type: type | None = None,
        check: Check | None = None,
        help: str = "",
        restart: bool = True,
        short: str | None = None,
        secret: bool = False,
    ) -> None:
        """Declare ``name``. ``type`` (int, float, str, bool or list of str) gives the CLI flag
        and a basic check; ``check(option, value) -> value`` validates (and may convert) more
        strictly; ``restart=False`` lets ``update_config`` change it on a running server;
        ``short`` is a flat name that sets it too; ``secret`` hides it in ``get_config()``."""
        if not name.isidentifier():
            raise PluginError(f"section {self.section!r}: option name {name!r} is not an identifier")
        if name in self.specs:
            raise PluginError(f"section {self.section!r} declares option {name!r} twice")
        spec = OptionSpec(self.section, name, default, type, check, help, restart, short, secret)
        try:
            spec.validate(default)
        except ConfigError as exc:
            raise PluginError(f"the default of option {spec.qualified!r} is invalid: {exc}") from None
        self.specs[name] = spec


EMPTY = Options("", {})


class OptionTable:
    """Every declared option of one plugin manager, by section and by short form."""

    def __init__(self, sections: Mapping[str, Mapping[str, OptionSpec]]) -> None:
        self.sections: dict[str, dict[str, OptionSpec]] = {
            name: dict(specs) for name, specs in sections.items()
        }
        self.shorts: dict[str, list[OptionSpec]] = {}
        for specs in self.sections.values():
            for spec in specs.values():
                if spec.short is not None:
                    self.shorts.setdefault(spec.short, []).append(spec)

    def specs(self) -> Iterator[OptionSpec]:
        for specs in self.sections.values():
            yield from specs.values()

    def defaults(self) -> dict[str, Options]:
        return {
            section: Options(section, {name: spec.default for name, spec in specs.items()})
            for section, specs in self.sections.items()
        }

    def knows(self, name: str) -> bool:
        return name in self.sections or name in self.shorts

    def given(self, options: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
        """Flatten section mappings and short forms to ``{(section, name): value}``; short
        forms first, so an explicit section entry wins over a short form."""
        flat: dict[tuple[str, str], Any] = {}
        for key, value in options.items():
            for spec in self.shorts.get(key, ()):
                flat[(spec.section, spec.name)] = value
        for key, value in options.items():
            if key not in self.sections:
                continue
            if not isinstance(value, Mapping):
                raise validation.fail(key, value, f"expected a mapping of the {key!r} plugin's options")
            specs = self.sections[key]
            for name, item in value.items():
                if name not in specs:
                    raise validation.unknown(f"option of plugin section {key!r}", name, specs)
                flat[(key, name)] = item
        return flat

    def apply(
        self, current: Mapping[str, Options], given: Mapping[tuple[str, str], Any]
    ) -> dict[str, Options]:
        """``current`` with ``given`` validated and set; returns new sections (all or nothing)."""
        values = {section: dict(options) for section, options in current.items()}
        for (section, name), value in given.items():
            values[section][name] = self.sections[section][name].validate(value)
        return {section: Options(section, items) for section, items in values.items()}


def option_table(collect: Callable[[Callable[[str], OptionDeclarations]], None]) -> OptionTable:
    """Build a table; ``collect(declarations_for)`` runs each plugin's ``stelar_add_options``."""
    sections: dict[str, dict[str, OptionSpec]] = {}

    def declarations_for(plugin_name: str) -> OptionDeclarations:
        section = section_name(plugin_name)
        declarations = OptionDeclarations(section)
        sections[section] = declarations.specs
        return declarations

    collect(declarations_for)
    return OptionTable({name: specs for name, specs in sections.items() if specs})
