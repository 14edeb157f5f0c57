"""A local certificate authority and the embedded brokers' certificate (``refnet dev up --secure``).

Made once with the ``cryptography`` package and kept in the broker's data dir
(``tls/``): ``ca.pem`` (the CA's certificate: what clients trust, the
``ssl.ca.location`` of every credentials file), ``ca-key.pem`` (its private
key, mode 0600: whoever reads it can mint a broker certificate) and
``broker.pem`` (the brokers' private key and certificate chain, mode 0600, in
the PEM form Kafka reads with ``ssl.keystore.type=PEM``).

The broker certificate names the address the brokers listen on (an IP or DNS
subject alternative name, plus ``localhost`` and ``127.0.0.1``), so clients
verify the hostname as they would against any real cluster. It is also a
client certificate: the brokers authenticate to each other and to the KRaft
controllers with it (mutual TLS, principal ``User:CN=refnet-broker``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from schemas.errors import RefnetError

#: Subject of the brokers' certificate; ``User:CN=refnet-broker`` is a super user.
BROKER_CN = "refnet-broker"
BROKER_PRINCIPAL = f"User:CN={BROKER_CN}"
CA_CN = "refnet local CA"
CA_DAYS = 3650
BROKER_DAYS = 825


class CaError(RefnetError, RuntimeError):
    """The local CA or the broker certificate cannot be made or read."""


@dataclass(frozen=True)
class TlsFiles:
    """Where the local CA keeps its files."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def broker(self) -> Path:
        """The brokers' key and certificate chain (Kafka's PEM keystore)."""
        return self.directory / "broker.pem"


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte (atomic rename)."""
    partial = path.with_name(path.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    partial.replace(path)


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            names.append(x509.DNSName(host))
    else:
        if str(address) != "127.0.0.1":
            names.append(x509.IPAddress(address))
    return names


def _covers(cert: x509.Certificate, host: str) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(name in san for name in _names(host))


def ensure_tls(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """Make the CA (once) and a broker certificate for ``host``; return their paths.

    Existing files are kept: clients that trust ``ca.pem`` go on trusting it.
    A broker certificate is made again when it is missing, expires within 30
    days, or does not name ``host`` (``REFNET_KAFKA_HOST`` changed).
    """
    files = TlsFiles(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    try:
        if files.ca_cert.exists() and files.ca_key.exists():
            ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
            ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        else:
            ca_key = ec.generate_private_key(ec.SECP256R1())
            ca_cert = _ca_certificate(ca_key, now)
            _write_private(files.ca_key, _key_pem(ca_key))
            files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise CaError(f"{files.ca_key}: not an EC private key")
        if _broker_current(files, host, now):
            return files
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _broker_certificate(key, ca_key, ca_cert, host, now)
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(
            serialization.Encoding.PEM
        )
        _write_private(files.broker, _key_pem(key) + chain)
    except (OSError, ValueError) as exc:
        raise CaError(f"the local CA in {directory} cannot be used: {exc}") from exc
    return files


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8, unencrypted: the form Kafka's PEM keystore reads without ssl.key.password
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _broker_current(files: TlsFiles, host: str, now: dt.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.broker.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - now > dt.timedelta(days=30) and _covers(cert, host)


def _ca_certificate(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_CN)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _broker_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    host: str,
    now: dt.datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=BROKER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


__all__ = ["BROKER_CN", "BROKER_PRINCIPAL", "CaError", "TlsFiles", "ensure_tls"]
