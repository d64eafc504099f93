"""Client-ID generators: ``uuid4`` (the default) and the shorter URL-safe ``token``."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable

from stelar_core.plugins.markers import hookimpl
from stelar_core.providers import IdGeneratorFactory, ProviderContext, Register


def uuid4_ids(context: ProviderContext) -> Callable[[], str]:
    return lambda: str(uuid.uuid4())


def token_ids(context: ProviderContext) -> Callable[[], str]:
    return lambda: secrets.token_urlsafe(12)


@hookimpl(trylast=True)
def stelar_register_id_generators(register: Register[IdGeneratorFactory]) -> None:
    register("uuid4", uuid4_ids)
    register("token", token_ids)
