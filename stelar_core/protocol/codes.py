"""Stable codes that travel on the wire: error codes (frame type 10) and close codes."""

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """The ``event`` of an error frame, and the ``code`` of an ACK error.

    These strings are a contract with every client; add new ones, never rename.
    """

    INVALID_FRAME = "invalid_frame"
    INVALID_JSON = "invalid_json"
    INVALID_EVENT = "invalid_event"
    NOT_CONNECTED = "not_connected"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    FRAME_TOO_LARGE = "frame_too_large"
    RATE_LIMITED = "rate_limited"
    UNKNOWN_ACK = "unknown_ack"
    NO_HANDLER = "no_handler"
    HANDLER_ERROR = "handler_error"
    ACK_TIMEOUT = "ack_timeout"
    TOO_MANY_PENDING_ACKS = "too_many_pending_acks"
    JOIN_REJECTED = "join_rejected"
    LEAVE_REJECTED = "leave_rejected"
    NOT_IN_ROOM = "not_in_room"
    MAX_ROOMS = "max_rooms"
    MAX_ROOMS_PER_CLIENT = "max_rooms_per_client"
    UNAUTHORIZED = "unauthorized"
    SERVER_FULL = "server_full"
    TOO_MANY_CONNECTIONS_FROM_IP = "too_many_connections_from_ip"
    CONNECT_TIMEOUT = "connect_timeout"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    SERVER_SHUTDOWN = "server_shutdown"
    SLOW_CONSUMER = "slow_consumer"
    INVALID_PAYLOAD = "invalid_payload"
    NO_HISTORY = "no_history"
    NO_PRESENCE = "no_presence"
    PRESENCE_FULL = "presence_full"


class DisconnectCode(IntEnum):
    """Codes of a disconnect frame; the WebSocket close codes of RFC 6455, so both transports agree."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    # Never sent: reported locally when a connection ended without a disconnect frame.
    ABNORMAL = 1006
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    SERVER_ERROR = 1011
    TRY_AGAIN_LATER = 1013
