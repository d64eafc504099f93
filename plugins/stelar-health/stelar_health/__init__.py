"""stelar's health, readiness and metrics endpoints."""

from stelar_health.metrics import StatsCollector, metrics_registry
from stelar_health.routes import HealthRoutes

__all__ = ["HealthRoutes", "StatsCollector", "metrics_registry"]
