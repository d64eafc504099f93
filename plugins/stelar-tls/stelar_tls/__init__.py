"""stelar-tls: TLS for stelar's socket transports (``wss://``, ``tcps://``, the health port).

Certificates from paths (watched: a renewed certificate is served from the next connection on,
without a restart) or PEM contents, client certificates (mTLS) verified against a CA file, and a
development certificate for localhost (``stelar serve --tls-self-signed``). Options live in the
``tls`` section; see ``docs/tls.md``.
"""

from stelar_tls.material import CertificateInfo
from stelar_tls.store import CertificateStore

__all__ = ["CertificateInfo", "CertificateStore"]
