"""The NATS subjects of one stelar cluster (sans-I/O).

``P`` is the prefix (default ``stelar``; one or more NATS tokens: clusters with different
prefixes share a NATS apart):

* ``P.room.<R>.m``: a room's messages; a node subscribes while it has a local member of the room.
* ``P.room.<R>.h``: those of a room with history, stored by JetStream (history.py); a node with a
  local member receives them from a consumer of its own (following.py), never subscribed plainly.
* ``P.all``: broadcasts; every node subscribes.
* ``P.client.<C>``: what is routed to one client (``to_id``, requests, disconnects, joins made
  for it by another node); its node subscribes while it is connected, so NATS itself routes to
  the one node that has it, and answers "no responders" at once when none has.
* ``P.node.<N>``: questions to one node (the cluster-wide reads).
* ``P.nodes``: every node's heartbeat (liveness and statistics), which every node reads.

Room names and client IDs may hold any character, while a NATS token may not hold ``.``,
``*``, ``>`` or white space: both are written as unpadded base64url (``R``, ``C``), with a
leading ``_`` so that the empty name is a token too.
"""

from __future__ import annotations

import base64
import re

# One or more tokens of letters, digits, "-" and "_", separated by dots.
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def valid_prefix(prefix: str) -> bool:
    return _PREFIX.fullmatch(prefix) is not None


def token(name: str) -> str:
    """``name`` as one NATS subject token (distinct names, distinct tokens)."""
    return "_" + base64.urlsafe_b64encode(name.encode()).rstrip(b"=").decode("ascii")


class Subjects:
    def __init__(self, prefix: str) -> None:
        if not valid_prefix(prefix):
            raise ValueError(
                f"prefix {prefix!r}: expected NATS tokens (letters, digits, - and _) joined by dots"
            )
        self.prefix = prefix
        self.all = f"{prefix}.all"
        self.nodes = f"{prefix}.nodes"

    def room(self, room: str) -> str:
        return f"{self.prefix}.room.{token(room)}.m"

    def history(self, room: str) -> str:
        return f"{self.prefix}.room.{token(room)}.h"

    def client(self, client_id: str) -> str:
        return f"{self.prefix}.client.{token(client_id)}"

    def node(self, node_id: str) -> str:
        return f"{self.prefix}.node.{token(node_id)}"
