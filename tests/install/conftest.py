"""What the installation tests share: the packages built once per session by install/build.sh, the
environment of a plain Debian root shell, and a self-signed certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install"
INSTALL_SH = INSTALL / "agent" / "install.sh"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Built:
    wheel: Path
    wheelhouse: Path
    deb: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """install/build.sh run once: the wheel, the agent's wheelhouse and the .deb."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([str(INSTALL / "build.sh"), "--out", str(out)], capture_output=True, text=True,
                          env=os.environ | {"PYTHON": sys.executable}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [wheel] = out.glob("khien-*-py3-none-any.whl")
    [deb] = out.glob("khien-agent_*.deb")
    return Built(wheel=wheel, wheelhouse=out / "wheelhouse", deb=deb)


def root_env(**extra: str) -> dict[str, str]:
    """A root shell on a Debian server: system PATH (Debian's python3, not this virtualenv), no
    PIP_* settings of the test machine, so an offline install really uses only the wheelhouse."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR")}
    return keep | {"PATH": SYSTEM_PATH} | extra


def run(*argv: str | Path, env: dict[str, str] | None = None, stdin: str | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env or root_env(),
                          input=stdin, timeout=timeout)


def self_signed(directory: Path, name: str = "khien.example.gov.vn") -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and 127.0.0.1 (its own CA), and its key: (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path
