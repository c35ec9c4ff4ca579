"""The certificate behind `https://localhost:PORT` redirects, and the listener's TLS context.

Slack refuses plain http redirect URLs for confidential apps, so the loopback listener speaks
TLS. cxslack makes its own self-signed certificate once (the browser warns about it until it is
trusted); `--tls-cert/--tls-key` can point at a locally trusted one instead (mkcert's, say).
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cxslack.errors import CxError
from cxslack.state.files import atomic_write
from cxslack.state.lock import locked

if TYPE_CHECKING:
    from cryptography import x509

CERT_VALIDITY = timedelta(days=365)
RENEW_WITHIN = timedelta(days=30)  # replace it well before browsers start refusing it
CERT_FILE = "localhost.pem"
KEY_FILE = "localhost-key.pem"

_TLS_HINT = (
    "Pass a PEM certificate and its unencrypted PEM key (mkcert writes localhost.pem and "
    "localhost-key.pem), or leave out --tls-cert/--tls-key to use cxslack's own certificate."
)


def ensure_loopback_certificate(state_dir: Path) -> tuple[Path, Path]:
    """(certificate, key) under `state_dir/tls/`, made once and renewed when it nears expiry."""
    tls_dir = state_dir / "tls"
    cert_path, key_path = tls_dir / CERT_FILE, tls_dir / KEY_FILE
    # Two cxslack processes starting at once must not end up with one's key and the other's cert.
    with locked(tls_dir / ".lock"):  # creates tls/ 0700
        if not _reusable(cert_path, key_path):
            cert_pem, key_pem = _self_signed_localhost()
            # mkstemp makes the temp file 0600 before any byte is written: the key is never wider.
            atomic_write(key_path, key_pem, mode=0o600, sweep=True)
            atomic_write(cert_path, cert_pem, mode=0o644, sweep=True)
    return cert_path, key_path


def load_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context; unusable files are a `tls_error` that says what is wrong."""
    _load_pair(cert, key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError included
        raise CxError(
            "tls_error", f"cannot load {cert} and {key}: {exc.strerror or exc}", _TLS_HINT
        ) from None
    return context


def covers_ipv6_loopback(cert: Path) -> bool:
    """Does the certificate name ::1 among its addresses? Then a browser that resolves
    `localhost` to ::1 may be served on ::1 with it too."""
    from ipaddress import ip_address

    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return ip_address("::1") in names.get_values_for_type(x509.IPAddress)


def _load_pair(cert: Path, key: Path) -> x509.Certificate:
    """The certificate, once it and `key` are known to belong together.

    Checked here because OpenSSL's own error for a bad file ("PEM lib") names neither file nor cause.
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    def fail(message: str) -> CxError:
        return CxError("tls_error", message, _TLS_HINT)

    try:
        cert_pem, key_pem = cert.read_bytes(), key.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise fail(f"{cert} is not a PEM certificate") from None
    try:
        private_key = load_pem_private_key(key_pem, password=None)
    except TypeError:  # cryptography's way of saying "this key needs a password"
        raise fail(f"{key} is encrypted; cxslack needs the key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise fail(f"{key} is not a PEM private key") from None
    if certificate.public_key() != private_key.public_key():
        raise fail(f"{key} is not the private key of the certificate {cert}")
    return certificate


def _reusable(cert: Path, key: Path) -> bool:
    try:
        certificate = _load_pair(cert, key)
    except CxError:  # missing, damaged or mismatched: make a new pair
        return False
    return certificate.not_valid_after_utc - datetime.now(UTC) > RENEW_WITHIN


def _self_signed_localhost() -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): EC P-256, CN and SANs for every loopback name cxslack accepts."""
    from ipaddress import ip_address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    no_usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "key_cert_sign",
         "crl_sign", "encipher_only", "decipher_only"),
        False,
    )  # fmt: skip
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # tolerate a little clock skew
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ip_address("127.0.0.1")),
                    x509.IPAddress(ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, **no_usage), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem
