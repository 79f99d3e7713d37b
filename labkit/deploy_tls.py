"""The deployment's TLS certificate for browsers (wss://), made once and kept.

`python -m labkit deploy-config` writes `nats/tls/server.crt` and `server.key` (0600)
when they are missing: a self-signed certificate for the names a browser uses to
reach the nodes (localhost, 127.0.0.1, the compose service names). A deployment with
a real certificate puts its own two files there (a chain and its key, PEM) and they
are kept; `--rotate` replaces a self-signed one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labkit.files import write_atomic, write_private

SELF_SIGNED_ORGANIZATION = "labkit deploy-config (self-signed)"
LIFETIME = timedelta(days=365)


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path
    made: bool  # True when this run made them (they were missing, or rotated)


def ensure_certificate(folder: Path, names: list[str], *, rotate: bool = False) -> CertificateFiles:
    """The certificate and key in `folder`: kept when present, else self-signed for `names`.

    `rotate` replaces them only when they are labkit's own self-signed pair: a
    certificate someone put there stays theirs to replace.
    """
    cert, key = folder / "server.crt", folder / "server.key"
    present = cert.is_file() and key.is_file()
    if present and not (rotate and is_self_signed_by_labkit(cert.read_bytes())):
        return CertificateFiles(cert, key, made=False)
    cert_pem, key_pem = self_signed_certificate(names)
    write_private(key, key_pem.decode())
    write_atomic(cert, cert_pem.decode())
    return CertificateFiles(cert, key, made=True)


def self_signed_certificate(names: list[str], now: datetime | None = None) -> tuple[bytes, bytes]:
    """A P-256 key and a certificate for `names` (DNS names or IP addresses), both PEM."""
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_SIGNED_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]
    )
    alternative_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative_names.append(x509.DNSName(name))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def is_self_signed_by_labkit(cert_pem: bytes) -> bool:
    certificate = x509.load_pem_x509_certificate(cert_pem)
    organizations = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(attribute.value == SELF_SIGNED_ORGANIZATION for attribute in organizations)
