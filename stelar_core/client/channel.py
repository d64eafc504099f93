"""What the parts of ``StelarClient`` share: the sans-I/O protocol session, the link it speaks
over while there is one, and the client's options, clock, hooks and error reporting."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from stelar_core.client.options import ClientOptions
from stelar_core.clock import Clock
from stelar_core.protocol.client import ClientSession
from stelar_core.transports.base import ClientLink

log = logging.getLogger("stelar.client")


class Channel:
    """The protocol session and the current link (``None`` while offline). Every frame the
    client sends leaves through :meth:`transmit`, which counts it."""

    __slots__ = ("connected", "link", "messages_sent", "session")

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.link: ClientLink | None = None
        # Welcomed and not lost: what is sent now goes out instead of into the offline queue.
        self.connected = False
        self.messages_sent = 0

    def transmit(self) -> None:
        """Send what the session has for the server (nothing without a link)."""
        frames = self.session.data_to_send()
        if self.link is not None:
            for frame in frames:
                self.link.send(frame)
            self.messages_sent += len(frames)


@attrs.frozen(slots=True, kw_only=True)
class ClientServices:
    """Handed whole to each part of the client, as the hub's parts get ``HubServices``."""

    channel: Channel
    # The options in force (update_options replaces them).
    options: Callable[[], ClientOptions]
    clock: Clock
    # hook(name, **arguments): the user's client hook, if any; one that raises is logged.
    hook: Callable[..., Any]
    # record_error(error, context): last_error, the on_error hook and the "error" listeners.
    record_error: Callable[[BaseException, str], None]
    spawn: Callable[[Awaitable[Any]], None]
