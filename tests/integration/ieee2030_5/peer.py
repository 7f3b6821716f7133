"""A real IEEE 2030.5 utility server on loopback: envoy (bsgip, MIT) behind nginx doing mutual TLS.

``tests/peers/envoy/install.sh`` installs envoy in ``.peers/envoy`` (CI runs it); nginx terminates TLS,
checks the client certificate against the test CA and forwards it (URL-encoded PEM) in the header
envoy reads, as envoy is deployed in production. Envoy keeps its data in its own PostgreSQL database
on the server of ``V2G_TEST_DATABASE_URL``, created and dropped here. The admin API (HTTP basic auth)
is how the utility creates aggregators, certificates and DER controls.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[3]
PEER = ROOT / ".peers" / "envoy"
REQUIRE = "V2G_REQUIRE_IEEE2030_5_PEER"
ADMIN_USER, ADMIN_PASSWORD = "utility", "admin-secret"


def missing() -> str | None:
    """Why the peer cannot run here (None: it can)."""
    if not (PEER / "bin" / "uvicorn").exists():
        return f"the envoy peer is not installed ({PEER}): run tests/peers/envoy/install.sh"
    if shutil.which("nginx") is None:
        return "nginx is not installed: run tests/peers/envoy/install.sh"
    if not os.environ.get("V2G_TEST_DATABASE_URL", "").startswith("postgresql"):
        return "V2G_TEST_DATABASE_URL must name a PostgreSQL server (envoy needs one)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    ip: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


NGINX = """daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{}}
http {{
  access_log {d}/nginx-access.log;
  client_body_temp_path {d}/tmp-body; proxy_temp_path {d}/tmp-proxy;
  fastcgi_temp_path {d}/tmp-fcgi; uwsgi_temp_path {d}/tmp-uwsgi; scgi_temp_path {d}/tmp-scgi;
  server {{
    listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {d}/server.pem; ssl_certificate_key {d}/server.key;
    ssl_client_certificate {d}/ca.pem; ssl_verify_client on;
    location / {{
      proxy_pass http://127.0.0.1:{app_port};
      proxy_set_header x-forwarded-client-cert $ssl_client_escaped_cert;
      proxy_set_header Host $http_host;
    }}
  }}
}}
"""


@dataclass
class EnvoyPeer:
    """envoy's 2030.5 and admin apps and the nginx front, started and stopped as processes."""

    workdir: Path
    database: str = field(default_factory=lambda: f"envoy_test_{uuid.uuid4().hex[:8]}")
    tls_port: int = field(default_factory=free_port)
    app_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.pem"

    @property
    def client_files(self) -> tuple[Path, Path]:
        return self.workdir / "client.pem", self.workdir / "client.key"

    def _pg(self) -> str:
        url = os.environ["V2G_TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        return url

    def _env(self) -> dict[str, str]:
        base = self._pg().rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": f"{base}/{self.database}",
            "ADMIN_USERNAME": ADMIN_USER,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "CERT_HEADER": "x-forwarded-client-cert",
            "DEFAULT_TIMEZONE": "Europe/Stockholm",
        }

    def create(self) -> None:
        """Certificates, the database and its schema (envoy's own Alembic migrations)."""
        ca_key, server_key, client_key = _key(), _key(), _key()
        ca = _cert("Test utility SERCA", ca_key, None, ca_key, ca=True)
        _write(self.workdir / "ca", ca)
        _write(self.workdir / "server", _cert("127.0.0.1", server_key, ca.subject, ca_key, ip=True), server_key)
        _write(self.workdir / "client", _cert("v2g aggregator", client_key, ca.subject, ca_key), client_key)
        with psycopg.connect(self._pg(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        server_dir = subprocess.run(
            [
                str(PEER / "bin" / "python"),
                "-c",
                "import envoy.server, os; print(os.path.dirname(envoy.server.__file__))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        subprocess.run(
            [str(PEER / "bin" / "alembic"), "upgrade", "head"],
            cwd=server_dir,
            env=self._env(),
            check=True,
            capture_output=True,
            timeout=180,
        )
        (self.workdir / "nginx.conf").write_text(
            NGINX.format(d=self.workdir, tls_port=self.tls_port, app_port=self.app_port)
        )

    def _spawn(self, name: str, args: list[str]) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(args, env=self._env(), stdout=log, stderr=subprocess.STDOUT)

    def start(self, *, admin: bool = True) -> None:
        uvicorn = str(PEER / "bin" / "uvicorn")
        self._spawn("server", [uvicorn, "envoy.server.main:app", "--host", "127.0.0.1", "--port", str(self.app_port)])
        if admin and "admin" not in self.procs:
            self._spawn(
                "admin", [uvicorn, "envoy.admin.main:app", "--host", "127.0.0.1", "--port", str(self.admin_port)]
            )
        self._spawn("nginx", ["nginx", "-c", str(self.workdir / "nginx.conf"), "-p", str(self.workdir)])
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        ports = [self.app_port, self.admin_port, self.tls_port]
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    log = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                    msg = f"envoy peer {name} exited with {proc.returncode}: {log}"
                    raise RuntimeError(msg)
            if all(_listening(p) for p in ports):
                return
            time.sleep(0.3)
        msg = f"envoy peer not listening on {ports} after {timeout_s} s"
        raise TimeoutError(msg)

    def stop_server(self) -> None:
        """The utility server goes away: the 2030.5 app and its TLS front stop (the admin API stays)."""
        for name in ("nginx", "server"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)

    def restart_server(self) -> None:
        self.start(admin=False)

    def close(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        with psycopg.connect(self._pg(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    # ------------------------------------------------------------------ the utility's admin API
    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.admin_port}", auth=(ADMIN_USER, ADMIN_PASSWORD), trust_env=False
        )

    def client(self) -> httpx.Client:
        """A 2030.5 client with the aggregator's certificate (to read back what the platform posted)."""
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(*(str(p) for p in self.client_files))
        return httpx.Client(base_url=self.url, verify=ctx, trust_env=False, headers={"Accept": "application/sep+xml"})


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
