"""stelar-otel's suite: one SDK tracer provider for the process (OpenTelemetry takes one), its
spans kept in memory, and each test reading only its own."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401

EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)


@pytest.fixture
def exported():
    """The spans ended since the test began (a call returns them)."""
    EXPORTER.clear()
    yield EXPORTER.get_finished_spans
    EXPORTER.clear()
