"""stelar-otel's suite: one SDK tracer provider and one meter provider for the process
(OpenTelemetry takes one of each), spans kept in memory with each test reading only its own,
metrics read on demand."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401

EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)
METRICS = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[METRICS]))


@pytest.fixture
def exported():
    """The spans ended since the test began (a call returns them)."""
    EXPORTER.clear()
    yield EXPORTER.get_finished_spans
    EXPORTER.clear()


@pytest.fixture
def collect():
    """Collect the metrics as a periodic reader does, on a thread of its own (awaited)."""

    async def collect_now():
        return await asyncio.to_thread(METRICS.get_metrics_data)

    return collect_now
