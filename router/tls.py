"""
TLS for listeners: checking the files a listener names, and a development certificate.

Crossbar serves TLS 1.3 only (``crossbar/common/twisted/endpoint.py``: no TLS 1.2, so no weak cipher or
DH parameter to choose), with single-use keys and no session tickets. What it does not do is tell a user
early and plainly that a file is wrong: it fails inside the worker. :func:`certificate_problems` reads
the files as Crossbar will and names the first problem of each (unreadable, not PEM, a key that does not
match the certificate, a certificate expired or not yet valid), for ``switchboard check`` and ``run``
(exit 2).

:func:`dev_certificate` makes (once, then reuses while it has a week left) a self-signed certificate for
``localhost``, ``127.0.0.1`` and ``::1`` in the data directory: ``switchboard run --dev-tls``. Browsers
warn about it until the user trusts it; it is for development only.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["DEV_VALIDITY", "certificate_problems", "dev_certificate", "pem_certificates"]

#: How long a development certificate is valid.
DEV_VALIDITY = datetime.timedelta(days=90)
_RENEW_BEFORE = datetime.timedelta(days=7)


def pem_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of the PEM file at ``path``, in order (ValueError if there is none)."""
    return x509.load_pem_x509_certificates(path.read_bytes())


def certificate_problems(
    cert: Path, key: Path, ca: Path | None = None, now: datetime.datetime | None = None
) -> list[tuple[str, str]]:
    """``(which, message)`` for each problem (``which`` is ``cert``, ``key`` or ``ca``); empty if usable."""
    now = now or datetime.datetime.now(datetime.UTC)
    problems: list[tuple[str, str]] = []
    certificate = None
    try:
        certificate = pem_certificates(cert)[0]
    except OSError as e:
        problems.append(("cert", f"cannot read {cert}: {e.strerror or e}"))
    except ValueError:
        problems.append(("cert", f"{cert} is not a PEM certificate"))
    private_key = None
    try:
        private_key = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except OSError as e:
        problems.append(("key", f"cannot read {key}: {e.strerror or e}"))
    except (ValueError, TypeError):
        problems.append(("key", f"{key} is not an unencrypted PEM private key"))
    if certificate is not None:
        if certificate.not_valid_after_utc <= now:
            problems.append(("cert", f"{cert} expired on {certificate.not_valid_after_utc:%Y-%m-%d}"))
        elif certificate.not_valid_before_utc > now:
            problems.append(("cert", f"{cert} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}"))
        if private_key is not None and _public_bytes(private_key.public_key()) != _public_bytes(
            certificate.public_key()
        ):
            problems.append(("key", f"{key} does not match the certificate {cert}"))
    if ca is not None:
        try:
            pem_certificates(ca)
        except OSError as e:
            problems.append(("ca", f"cannot read {ca}: {e.strerror or e}"))
        except ValueError:
            problems.append(("ca", f"{ca} is not a PEM certificate"))
    return problems


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def dev_certificate(directory: Path, now: datetime.datetime | None = None) -> tuple[Path, Path]:
    """The development certificate and key in ``directory`` (created owner-only, renewed a week before
    they expire): ``(cert, key)``."""
    now = now or datetime.datetime.now(datetime.UTC)
    cert_path, key_path = directory / "dev-cert.pem", directory / "dev-key.pem"
    usable = cert_path.exists() and key_path.exists() and not certificate_problems(cert_path, key_path, now=now)
    if usable and pem_certificates(cert_path)[0].not_valid_after_utc - now > _RENEW_BEFORE:
        return cert_path, key_path
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost (Switchboard development)")])
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    names.append(x509.IPAddress(ipaddress.ip_address("::1")))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + DEV_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "wb") as out:
        out.write(pem_key)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
