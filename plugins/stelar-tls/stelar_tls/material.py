"""Certificates and keys as bytes: where they come from (a path or PEM contents), what they
say (serial, validity), and how ``ssl`` loads them.

``ssl.SSLContext.load_cert_chain`` reads only files. Material is read into memory once and
loaded from there (an anonymous in-memory file on Linux, else a private temporary file removed
at once), so the bytes that were checked are the bytes that are served, even if certbot is
halfway through replacing the files.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
from cryptography import x509

PEM_MARKER = "-----BEGIN"


def is_pem(value: str | bytes) -> bool:
    """Whether an option holds PEM contents rather than a path."""
    if isinstance(value, bytes):
        return PEM_MARKER.encode() in value
    return PEM_MARKER in value


def read(value: str | bytes) -> bytes:
    """The PEM bytes of an option: its contents, or the file it names."""
    if is_pem(value):
        return value.encode() if isinstance(value, str) else value
    return Path(os.fsdecode(value)).read_bytes()


def file_state(value: str | bytes | None) -> tuple[int, int, int, int] | None:
    """What changes when the file an option names is replaced or rewritten (through symlinks, as
    certbot's ``live/`` and Kubernetes' mounted secrets swap them); ``None`` for PEM contents."""
    if value is None or is_pem(value):
        return None
    try:
        stat = os.stat(value)
    except OSError:
        return (-1, -1, -1, -1)  # missing for now (mid-replacement): a change, tried again later
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


@attrs.frozen(slots=True)
class CertificateInfo:
    """What an operator needs to know of the certificate being served."""

    serial: int
    subject: str
    not_before: datetime.datetime
    not_after: datetime.datetime

    @property
    def serial_hex(self) -> str:
        """The serial as ``ssl.getpeercert()`` shows it (``serialNumber``: whole bytes in hex)."""
        digits = f"{self.serial:X}"
        return digits.zfill(len(digits) + len(digits) % 2)


class MaterialError(Exception):
    """Certificate material that cannot be served; the message says why."""


def inspect(chain: bytes, now: datetime.datetime) -> CertificateInfo:
    """The first certificate of a PEM chain; refuses one outside its validity period."""
    try:
        certificates = x509.load_pem_x509_certificates(chain)
    except ValueError as exc:
        raise MaterialError(f"not a PEM certificate: {exc}") from None
    first = certificates[0]
    info = CertificateInfo(
        serial=first.serial_number,
        subject=first.subject.rfc4514_string(),
        not_before=first.not_valid_before_utc,
        not_after=first.not_valid_after_utc,
    )
    if info.not_after <= now:
        raise MaterialError(
            f"the certificate ({info.subject}) expired on {info.not_after:%Y-%m-%d %H:%M} UTC"
        )
    if info.not_before > now:
        raise MaterialError(
            f"the certificate ({info.subject}) is not valid before {info.not_before:%Y-%m-%d %H:%M} UTC"
        )
    return info


@contextlib.contextmanager
def as_file(data: bytes) -> Iterator[str]:
    """A path that reads as ``data`` for as long as the block lasts; nothing stays on disk."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("stelar-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="stelar-tls-") as folder:  # private (0700)
        path = Path(folder) / "material.pem"
        path.write_bytes(data)
        yield str(path)


def load_chain(context: ssl.SSLContext, chain: bytes, key: bytes | None, password: str | None) -> None:
    """``context.load_cert_chain`` from bytes; a key that does not match, a wrong password or
    bad PEM raise :class:`MaterialError` with OpenSSL's reason."""
    with contextlib.ExitStack() as stack:
        chain_path = stack.enter_context(as_file(chain))
        key_path = stack.enter_context(as_file(key)) if key is not None else None
        try:
            context.load_cert_chain(chain_path, key_path, password)
        except ssl.SSLError as exc:
            hint = " (is the password right?)" if password is not None else ""
            raise MaterialError(f"the certificate and key do not load{hint}: {exc.reason or exc}") from None


def load_authorities(context: ssl.SSLContext, authorities: bytes) -> None:
    """Trust the PEM certificates of ``authorities`` (a CA bundle) for verifying peers."""
    try:
        context.load_verify_locations(cadata=authorities.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError) as exc:
        raise MaterialError(f"the CA file does not load: {exc}") from None
