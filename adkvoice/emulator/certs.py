"""Throwaway TLS material for the emulator.

google-genai always dials ``wss://``, so the emulator must speak TLS. We mint a tiny CA plus
a leaf for 127.0.0.1/localhost on every start: a separate CA (rather than one self-signed
leaf) keeps OpenSSL's strict verification modes happy, and the client only has to trust
the CA through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=2)


@dataclass(frozen=True)
class CertFiles:
    """Paths of the files written by `write_cert_files`."""

    cert: Path  # leaf certificate followed by the CA (the chain the server presents)
    key: Path  # leaf private key, mode 0600
    ca: Path  # the CA alone
    bundle: Path  # certifi's CAs + the emulator CA: what clients use as SSL_CERT_FILE


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("adkvoice emulator throwaway CA"))
        .issuer_name(_name("adkvoice emulator throwaway CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_leaf(
    now: dt.datetime, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    san = x509.SubjectAlternativeName(
        [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.DNSName("localhost"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def write_cert_files(directory: Path) -> CertFiles:
    """Generate a fresh CA and localhost leaf and write them (and the CA bundle) to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_cert = _make_ca(now)
    leaf_key, leaf_cert = _make_leaf(now, ca_key, ca_cert)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    files = CertFiles(
        cert=directory / "emulator-cert.pem",
        key=directory / "emulator-key.pem",
        ca=directory / "emulator-ca.pem",
        bundle=directory / "ca-bundle.pem",
    )
    files.cert.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key is throwaway, but still keep it private to this user.
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    files.ca.write_bytes(ca_pem)
    system = Path(certifi.where()).read_bytes()
    files.bundle.write_bytes(system.rstrip(b"\n") + b"\n\n" + ca_pem)
    return files


def server_ssl_context(files: CertFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.cert, files.key)
    return ctx


def client_ssl_context(files: CertFiles) -> ssl.SSLContext:
    """A client context that trusts only the emulator CA (handy for tests and probes)."""
    return ssl.create_default_context(cafile=str(files.ca))
