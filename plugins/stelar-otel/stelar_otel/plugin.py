"""stelar-otel's hooks: its options (``[stelar.otel]``) and its tracer.

Off by default: installed, it traces once ``enabled = true``. OpenTelemetry is imported only
then (tracer.py), so a server without tracing, or with it off, pays nothing for it but the
hub's one ``is None`` check.
"""

from __future__ import annotations

from stelar_core.plugin_api import (
    OptionDeclarations,
    ProviderContext,
    Register,
    Tracer,
    TracerFactory,
    hookimpl,
)


@hookimpl
def stelar_add_options(options: OptionDeclarations) -> None:
    options.add("enabled", default=False, type=bool, help="trace what the server processes (off by default)")


def _tracer(context: ProviderContext) -> Tracer | None:
    if not context.options.enabled:
        return None
    from opentelemetry import trace

    from stelar_otel.tracer import INSTRUMENTATION, OtelTracer

    return OtelTracer(trace.get_tracer(INSTRUMENTATION))


@hookimpl
def stelar_register_tracers(register: Register[TracerFactory]) -> None:
    register("otel", _tracer)
