"""The stable surface for plugins: everything a ``stelar-*`` distribution may import from the core.

A plugin imports from here and from nowhere else in ``stelar_core``::

    from stelar_core.plugin_api import TransportProvider, hookimpl

Every name below is kept working across minor releases (a rename keeps the old name with a
deprecation warning for at least one minor release); anything else in ``stelar_core`` is
internal and may change at any time. ``docs/plugins.md`` says what each name promises. The
test-time kit (``TestClient``, the fixtures, ``TransportConformance``) lives in
``stelar_core.testing``, for a plugin's tests.

stelar's own six distributions are held to this: a test fails when a module of theirs imports
any other ``stelar_core`` module (``tests/test_plugin_boundaries.py``).
"""

from stelar_core.builtins.history import new_epoch
from stelar_core.builtins.ip_tracker import MemoryIPTracker
from stelar_core.builtins.token_bucket import TokenBucketLimiter
from stelar_core.client import StelarClient
from stelar_core.clock import REAL_CLOCK, Clock, Timer, wait_for
from stelar_core.compiled import describe as hot_path
from stelar_core.config import RateLimit, ServerConfig, networks
from stelar_core.errors import (
    AckError,
    AckTimeout,
    ConfigError,
    ConnectionRefused,
    LimitReached,
    NotConnected,
    PluginError,
    ProtocolError,
    StelarError,
)
from stelar_core.hub.recovery import history_json
from stelar_core.plugins.markers import ENTRY_POINT_GROUP, hookimpl
from stelar_core.plugins.options import OptionDeclarations
from stelar_core.plugins.routes import RouteContext, RouteRegister
from stelar_core.plugins.view import ClusterView, ServerView
from stelar_core.protocol import (
    LENGTH_PREFIX_SIZE,
    DisconnectCode,
    ErrorCode,
    Frame,
    FrameType,
    StreamParser,
    decode_frame,
    dump_json,
    encode_frame,
    length_prefixed,
    load_json,
)
from stelar_core.protocol.acks import ack_timeout, request_error, request_failure
from stelar_core.protocol.publications import Position, decode_publication, encode_publication
from stelar_core.providers import (
    Broker,
    BrokerFactory,
    BrokerPort,
    ClusterBroker,
    ClusterEmitter,
    Delivery,
    EmitterProvider,
    Factory,
    HistoryPage,
    HistoryStore,
    IdGeneratorFactory,
    IPTracker,
    IPTrackerFactory,
    LimiterContext,
    MaybeAwaitable,
    MembershipWatcher,
    PresenceStore,
    Problems,
    ProviderContext,
    RateLimiter,
    RateLimiterFactory,
    Register,
    Resources,
    SessionRecord,
    SessionStore,
    TransportContext,
    TransportProvider,
    resolve,
)
from stelar_core.room_policies import RoomPolicy
from stelar_core.server.relay import build_relay_server
from stelar_core.server.server import StelarServer
from stelar_core.tls import ServerTLS, TLSProvider, client_context, handshake_error
from stelar_core.tracing import DeliverScope, ProcessScope, SendScope, Tracer, TracerFactory, traceparent
from stelar_core.transports.base import (
    Admission,
    ClientLink,
    Connection,
    ConnectOptions,
    Connector,
    FrameReceiver,
    HttpHandler,
    HttpRequest,
    HttpResponse,
    HttpRoute,
    HubPort,
    SessionPort,
    Transport,
)
from stelar_core.transports.client_stream import ClientStream
from stelar_core.transports.connectors import find_connector
from stelar_core.transports.http import PlainHttpExchange, serve_route, text
from stelar_core.transports.listening import Listener
from stelar_core.transports.streams import (
    FlowControlledProtocol,
    SocketListener,
    close_connections,
    socket_url,
)
from stelar_core.validation import (
    boolean,
    fail,
    function_or_none,
    integer,
    optional,
    port,
    seconds,
    strings_or_none,
    unknown,
    url_path,
)
from stelar_core.values import SUMMED, ClientInfo, ClusterStats, Options, Stats, Tapped, cluster_stats

__all__ = [
    "ENTRY_POINT_GROUP",
    "LENGTH_PREFIX_SIZE",
    "REAL_CLOCK",
    "SUMMED",
    "AckError",
    "AckTimeout",
    "Admission",
    "Broker",
    "BrokerFactory",
    "BrokerPort",
    "ClientInfo",
    "ClientLink",
    "ClientStream",
    "Clock",
    "ClusterBroker",
    "ClusterEmitter",
    "ClusterStats",
    "ClusterView",
    "ConfigError",
    "ConnectOptions",
    "Connection",
    "ConnectionRefused",
    "Connector",
    "DeliverScope",
    "Delivery",
    "DisconnectCode",
    "EmitterProvider",
    "ErrorCode",
    "Factory",
    "FlowControlledProtocol",
    "Frame",
    "FrameReceiver",
    "FrameType",
    "HistoryPage",
    "HistoryStore",
    "HttpHandler",
    "HttpRequest",
    "HttpResponse",
    "HttpRoute",
    "HubPort",
    "IPTracker",
    "IPTrackerFactory",
    "IdGeneratorFactory",
    "LimitReached",
    "LimiterContext",
    "Listener",
    "MaybeAwaitable",
    "MembershipWatcher",
    "MemoryIPTracker",
    "NotConnected",
    "OptionDeclarations",
    "Options",
    "PlainHttpExchange",
    "PluginError",
    "Position",
    "PresenceStore",
    "Problems",
    "ProcessScope",
    "ProtocolError",
    "ProviderContext",
    "RateLimit",
    "RateLimiter",
    "RateLimiterFactory",
    "Register",
    "Resources",
    "RoomPolicy",
    "RouteContext",
    "RouteRegister",
    "SendScope",
    "ServerConfig",
    "ServerTLS",
    "ServerView",
    "SessionPort",
    "SessionRecord",
    "SessionStore",
    "SocketListener",
    "Stats",
    "StelarClient",
    "StelarError",
    "StelarServer",
    "StreamParser",
    "TLSProvider",
    "Tapped",
    "Timer",
    "TokenBucketLimiter",
    "Tracer",
    "TracerFactory",
    "Transport",
    "TransportContext",
    "TransportProvider",
    "ack_timeout",
    "boolean",
    "build_relay_server",
    "client_context",
    "close_connections",
    "cluster_stats",
    "decode_frame",
    "decode_publication",
    "dump_json",
    "encode_frame",
    "encode_publication",
    "fail",
    "find_connector",
    "function_or_none",
    "handshake_error",
    "history_json",
    "hookimpl",
    "hot_path",
    "integer",
    "length_prefixed",
    "load_json",
    "networks",
    "new_epoch",
    "optional",
    "port",
    "request_error",
    "request_failure",
    "resolve",
    "seconds",
    "serve_route",
    "socket_url",
    "strings_or_none",
    "text",
    "traceparent",
    "unknown",
    "url_path",
    "wait_for",
]
