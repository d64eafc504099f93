"""Client-ID generators: ``uuid4`` (the default) and the shorter URL-safe ``token``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

from stelar_core.plugins.markers import hookimpl
from stelar_core.providers import IdGeneratorFactory, ProviderContext, Register


def uuid4() -> str:
    """A random (version 4) UUID in its usual text form: what ``str(uuid.uuid4())`` gives, made
    without the UUID object, whose checks cost more than the random bytes (one per connection)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def uuid4_ids(context: ProviderContext) -> Callable[[], str]:
    return uuid4


def token_ids(context: ProviderContext) -> Callable[[], str]:
    return lambda: secrets.token_urlsafe(12)


@hookimpl(trylast=True)
def stelar_register_id_generators(register: Register[IdGeneratorFactory]) -> None:
    register("uuid4", uuid4_ids)
    register("token", token_ids)
