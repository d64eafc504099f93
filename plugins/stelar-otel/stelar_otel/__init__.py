"""stelar-otel: OpenTelemetry traces of what a stelar server processes (see plugin.py)."""
