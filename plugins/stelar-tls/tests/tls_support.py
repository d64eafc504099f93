"""Certificates for the TLS tests, made per run with trustme, and what a TLS peer sees."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from pathlib import Path

import trustme

LOOPBACK = ("127.0.0.1", "localhost")


def write_leaf(issued: trustme.LeafCert, cert: Path, key: Path) -> tuple[str, str]:
    """Write a certificate chain and its key in place (as certbot renews them)."""
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    key.write_bytes(issued.private_key_pem.bytes())
    return str(cert), str(key)


def serial(issued: trustme.LeafCert) -> str:
    """The serial of ``issued`` as ``getpeercert()`` shows it."""
    from cryptography import x509

    digits = f"{x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes()).serial_number:X}"
    return digits.zfill(len(digits) + len(digits) % 2)  # whole bytes, as OpenSSL prints it


def expired(authority: trustme.CA, *names: str) -> trustme.LeafCert:
    now = datetime.datetime.now(datetime.UTC)
    return authority.issue_cert(
        *names, not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
    )


def client_context(authority: trustme.CA, client: trustme.LeafCert | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    if client is not None:
        client.configure_cert(context)
    return context


async def served_serial(port: int, authority: trustme.CA) -> str:
    """The serial of the certificate a new TLS connection to ``port`` is served."""
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context(authority), server_hostname="127.0.0.1"
    )
    certificate = writer.get_extra_info("peercert")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return str(certificate["serialNumber"])
