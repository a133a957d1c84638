"""deploy/nginx/securegather.conf run on this machine, unchanged but for its addresses and paths:
a self-signed certificate, free ports and a temporary prefix, nginx in the foreground. The tests
and bench/slow_clients.py put it in front of a gunicorn they started.

Every command line here is built from constants, paths of its own and integers.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CONF = Path(__file__).resolve().parent / "nginx" / "securegather.conf"
NGINX = os.environ.get("SECUREGATHER_NGINX", "/usr/sbin/nginx")
HOST = "localhost"


def nginx_missing() -> str | None:
    """Why nginx cannot run here, or None."""
    if shutil.which(NGINX):
        return None
    return f"{NGINX} not installed (Debian: nginx)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, valid for a day, and its key (0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class Proxy:
    https_port: int
    http_port: int
    certificate: Path
    access_log: Path
    error_log: Path

    @property
    def origin(self) -> str:
        return f"https://{HOST}:{self.https_port}"


def render(text: str, upstream_port: int, proxy: Proxy, key: Path) -> str:
    """The shipped configuration with this machine's ports and paths: each line replaced must be
    there, so a change to the shipped file cannot leave the test running another one."""
    replacements = {
        "listen 443 ssl http2;": f"listen 127.0.0.1:{proxy.https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "listen 80;": f"listen 127.0.0.1:{proxy.http_port};",
        "listen [::]:80;": "",
        "server_name voice.example.com;": f"server_name {HOST};",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "/etc/securegather/tls/fullchain.pem": str(proxy.certificate),
        "/etc/securegather/tls/privkey.pem": str(key),
        "/var/log/nginx/securegather.access.log": str(proxy.access_log),
    }
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"{CONF} no longer holds {old!r}")
        text = text.replace(old, new)
    return text


def main_conf(prefix: Path, site: Path, error_log: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf gives the site, with every path in ``prefix``."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Root runs the workers here too: they read the temporary prefix, which is root's alone.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""{user}
worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {error_log} info;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
{temp}
    include {site};
}}
"""


@contextmanager
def nginx(upstream_port: int) -> Iterator[Proxy]:
    """nginx in the foreground with the shipped site in front of 127.0.0.1:``upstream_port``."""
    with tempfile.TemporaryDirectory(prefix="sg-nginx-") as tmp:
        prefix = Path(tmp)
        certificate, key = self_signed(prefix)
        proxy = Proxy(
            https_port=free_port(),
            http_port=free_port(),
            certificate=certificate,
            access_log=prefix / "access.log",
            error_log=prefix / "error.log",
        )
        site = prefix / "securegather.conf"
        site.write_text(render(CONF.read_text(), upstream_port, proxy, key))
        conf = prefix / "nginx.conf"
        conf.write_text(main_conf(prefix, site, proxy.error_log))
        process = subprocess.Popen(  # noqa: S603  (paths of its own)
            [NGINX, "-p", str(prefix), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(proxy.https_port, process, proxy.error_log)
            yield proxy
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"nginx exited at start-up:\n{detail}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {port} within 30 s")
