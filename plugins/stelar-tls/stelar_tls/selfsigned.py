"""``--tls-self-signed``: a development certificate for this machine's loopback names.

A local certificate authority is made once and kept (``ca.pem``, ``ca-key.pem``) in a folder of
the user's cache, so a browser or a client told to trust it keeps trusting it across restarts;
each start issues a fresh certificate from it for ``localhost``, ``127.0.0.1`` and ``::1``, kept
in memory only (so the workers of ``--workers`` never read each other's half-written files).
Never for production: the CA's key sits unencrypted beside it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import trustme

NAMES = ("localhost", "127.0.0.1", "::1")


def default_folder() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "stelar" / "tls"


def development_certificate(folder: Path) -> tuple[str, str, Path]:
    """A fresh certificate and its key (PEM contents), and the path of the CA file clients
    should trust."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_path, ca_key_path = folder / "ca.pem", folder / "ca-key.pem"
    with _locked(folder / ".lock"):  # workers starting together make one CA, not one each
        if ca_path.exists() and ca_key_path.exists():
            authority = trustme.CA.from_pem(ca_path.read_bytes(), ca_key_path.read_bytes())
        else:
            authority = trustme.CA(organization_name="stelar development CA")
            _write_private(ca_key_path, authority.private_key_pem.bytes())
            ca_path.write_bytes(authority.cert_pem.bytes())
    issued = authority.issue_cert(*NAMES)
    chain = b"".join(blob.bytes() for blob in issued.cert_chain_pems)
    return chain.decode("ascii"), issued.private_key_pem.bytes().decode("ascii"), ca_path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: one process at a time is the user's business
        yield
        return
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
