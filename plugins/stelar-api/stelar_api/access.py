"""Who is calling: an API key, or an admin page session opened with one; and the throttle on
failed attempts per IP address, shared by the API and the admin page's login."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

import attrs

from stelar_api.http import FailureThrottle, error_response
from stelar_api.keys import ApiKey, bearer, find_key
from stelar_core.plugin_api import HttpRequest, HttpResponse, Options, RateLimit

SESSION_PREFIX = "session."


@attrs.define(slots=True)
class _Session:
    key_name: str
    expires: float


class AdminSessions:
    """Sessions of the admin page: a random token per login, valid ``ttl`` seconds, at most
    ``limit`` at once (the oldest goes first). A session acts with the key it was opened with,
    as that key is configured now: removing or demoting the key ends or demotes its sessions."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[bytes, _Session] = {}  # by the token's digest, never the token

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, key: ApiKey, ttl: float, limit: int) -> str:
        self._sweep()
        while len(self._sessions) >= limit:
            del self._sessions[next(iter(self._sessions))]
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        self._sessions[_digest(token)] = _Session(key.name, self._clock() + ttl)
        return token

    def find(self, token: str, keys: tuple[ApiKey, ...]) -> ApiKey | None:
        digest = _digest(token)
        session = self._sessions.get(digest)
        if session is None:
            return None
        if session.expires <= self._clock():
            del self._sessions[digest]
            return None
        return next((key for key in keys if key.name == session.key_name), None)

    def close(self, token: str) -> bool:
        return self._sessions.pop(_digest(token), None) is not None

    def _sweep(self) -> None:
        now = self._clock()
        for digest in [d for d, session in self._sessions.items() if session.expires <= now]:
            del self._sessions[digest]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Access:
    """Authentication of API requests: ``authenticate`` gives the caller's key, or the answer
    that refuses it (401, or 429 for an address that failed too often)."""

    def __init__(
        self, options: Callable[[], Options], failures: RateLimit, count: Callable[[str], None]
    ) -> None:
        self._options = options
        self.throttle = FailureThrottle(failures)
        self.sessions = AdminSessions()
        self._count = count

    def authenticate(self, request: HttpRequest) -> ApiKey | HttpResponse:
        address = request.remote_address
        if self.throttle.blocked(address):
            self._count("throttled")
            return error_response(
                429,
                "too_many_failures",
                "too many failed attempts from this address; try again later",
                headers={"Retry-After": self.throttle.retry_after()},
            )
        token = bearer(request.headers.get("authorization"))
        if token is None:
            self._count("unauthorized")
            return error_response(
                401,
                "unauthorized",
                "an API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": 'Bearer realm="stelar"'},
            )
        key = self.find(token)
        if key is None:
            self.throttle.failed(address)
            self._count("unauthorized")
            return error_response(
                401,
                "unauthorized",
                "the API key is not valid (or the admin session has expired)",
                headers={"WWW-Authenticate": 'Bearer realm="stelar", error="invalid_token"'},
            )
        return key

    def find(self, token: str) -> ApiKey | None:
        """The key of an API key or of an admin session's token."""
        if token.startswith(SESSION_PREFIX):
            return self.sessions.find(token, self._keys())
        return self.find_api_key(token)

    def find_api_key(self, secret: str) -> ApiKey | None:
        return find_key(self._keys(), secret)

    def _keys(self) -> tuple[ApiKey, ...]:
        keys: tuple[ApiKey, ...] = self._options()["keys"]  # (options.keys is the Mapping method)
        return keys
