"""stelar on NATS: many processes on many machines act as one server (``broker = "nats"``).

See docs/scaling.md ("NATS") for what crosses nodes and how.
"""

from stelar_nats.broker import NatsBroker, NatsUnavailable

__all__ = ["NatsBroker", "NatsUnavailable"]
