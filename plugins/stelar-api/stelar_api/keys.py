"""API keys: what ``[stelar.api] keys`` holds, and finding the key a request presents.

A key is compared in constant time against every configured key (``hmac.compare_digest`` of
SHA-256 digests, so that neither the position of the first differing byte nor the keys' lengths
show in the time taken), and every key is compared, so the time does not tell which one matched.
Several keys live side by side for rotation: add the new one, move the callers, remove the old.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import attrs

from stelar_core.plugin_api import fail

MIN_KEY_LENGTH = 16
_KEY_FIELDS = {"key", "name", "read_only"}


@attrs.frozen(slots=True)
class ApiKey:
    """One configured key: its ``name`` (in logs, metrics and rate limits; never the secret),
    the digest of its secret, and whether it may only read."""

    name: str
    digest: bytes = attrs.field(repr=False)
    read_only: bool = False


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def api_keys(option: str, value: Any) -> tuple[ApiKey, ...]:
    """The option's check: a list whose items are a secret (a full-access key) or a table
    ``{key = "...", name = "...", read_only = true}``."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise fail(option, value, "expected a list of keys (strings or {key, name, read_only} tables)")
    keys: list[ApiKey] = []
    for index, item in enumerate(value):
        keys.append(_key(f"{option}[{index}]", item))
    names = [key.name for key in keys]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise fail(option, "...", f"key names must differ; {duplicates} appear more than once")
    return tuple(keys)


def _key(option: str, item: Any) -> ApiKey:
    if isinstance(item, ApiKey):
        return item
    if isinstance(item, str):
        item = {"key": item}
    if not isinstance(item, dict):
        raise fail(option, "...", "expected a string or a {key, name, read_only} table")
    unknown = set(item) - _KEY_FIELDS
    if unknown:
        raise fail(option, "...", f"unknown fields {sorted(unknown)}; allowed: key, name, read_only")
    secret = item.get("key")
    if not isinstance(secret, str) or len(secret) < MIN_KEY_LENGTH:
        # The value is a secret: the error never repeats it.
        raise fail(option, "...", f"key must be a string of at least {MIN_KEY_LENGTH} characters")
    # Unnamed: named after its digest, so that the name follows the key through rotations (an
    # admin session belongs to a name) and still tells nothing of the secret.
    name = item.get("name", f"key-{_digest(secret).hex()[:8]}")
    if not isinstance(name, str) or not name:
        raise fail(f"{option}.name", name, "expected a non-empty string")
    read_only = item.get("read_only", False)
    if not isinstance(read_only, bool):
        raise fail(f"{option}.read_only", read_only, "expected true or false")
    return ApiKey(name, _digest(secret), read_only)


def find_key(keys: Iterable[ApiKey], presented: str) -> ApiKey | None:
    """The key whose secret is ``presented``, comparing with every key in constant time."""
    digest = _digest(presented)
    found = None
    for key in keys:
        if hmac.compare_digest(key.digest, digest):
            found = key
    return found


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None without one."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
