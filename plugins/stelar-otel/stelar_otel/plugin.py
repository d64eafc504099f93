"""stelar-otel's hooks: its options (``[stelar.otel]``) and its tracer.

Off by default: installed, it traces once ``enabled = true``, and then also gives the server's
statistics as OpenTelemetry metrics (``metrics = false`` turns those off). OpenTelemetry is
imported only then (tracer.py, metrics.py), so a server without tracing, or with it off, pays
nothing for it but the hub's one ``is None`` check.
"""

from __future__ import annotations

from stelar_core.plugin_api import (
    OptionDeclarations,
    ProviderContext,
    Register,
    ServerView,
    Tracer,
    TracerFactory,
    fail,
    hookimpl,
)


def _ratio(option: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise fail(option, value, "expected a number from 0 to 1")
    return float(value)


@hookimpl
def stelar_add_options(options: OptionDeclarations) -> None:
    options.add("enabled", default=False, type=bool, help="trace what the server processes (off by default)")
    options.add(
        "sample_ratio",
        default=1.0,
        type=float,
        check=_ratio,
        help=(
            "share of what arrives without a trace context to trace, decided before asking the"
            " SDK's sampler (1.0: leave every decision to it)"
        ),
    )
    options.add(
        "metrics",
        default=True,
        type=bool,
        help="while enabled, also give the figures of get_stats() as OpenTelemetry metrics",
    )


def _tracer(context: ProviderContext) -> Tracer | None:
    if not context.options.enabled:
        return None
    from opentelemetry import trace

    from stelar_otel.tracer import INSTRUMENTATION, OtelTracer

    return OtelTracer(trace.get_tracer(INSTRUMENTATION), context.options.sample_ratio)


@hookimpl
def stelar_register_tracers(register: Register[TracerFactory]) -> None:
    register("otel", _tracer)


def _metrics_wanted(server: ServerView) -> bool:
    options = server.config.plugin("otel")
    return bool(options.enabled and options.metrics)


@hookimpl
def stelar_on_server_started(server: ServerView) -> None:
    if _metrics_wanted(server):
        from stelar_otel.metrics import server_metrics

        server_metrics().observe(server)


@hookimpl
def stelar_on_server_stopping(server: ServerView) -> None:
    if _metrics_wanted(server):
        from stelar_otel.metrics import server_metrics

        server_metrics().forget(server)
