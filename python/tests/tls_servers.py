"""A private redis-server that speaks only TLS and knows only ACL users, for the security tests.

The certificate authority is made here, with the ``openssl`` command line, in a
temporary directory: a CA, a server certificate for 127.0.0.1 / localhost and a
client certificate, all signed by that CA. The server listens on its TLS port
only (``--port 0``) and requires a client certificate (``--tls-auth-clients
yes``). The ``default`` user is switched off; the one user the server starts
with is ``admin`` (every command, every key), which the tests use to create the
restricted users with ``ACL SETUSER``, exactly as docs/security.md prints them.

    certs = make_certs(Path("/tmp/x/certs"))
    with TlsRedisServer(Path("/tmp/x"), certs) as srv:
        admin = srv.admin()
        admin.execute_command("ACL", "SETUSER", "producer", ...)
        redis.Redis.from_url(srv.url_for("producer", "secret"), **certs.redis_kwargs())

Reuses servers.RedisServer (its cleanup layers included): only the command line,
the URL and the readiness probe differ.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from servers import HOST, START_TIMEOUT, RedisServer, RedisServerError

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-secret"
_DAYS = "2"


@dataclass(frozen=True)
class Certs:
    """Paths of the PEM files a test CA issued."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def redis_kwargs(self) -> dict[str, Any]:
        """The redis-py (and homing ``Client.from_url``) keyword arguments of a TLS client."""
        return {"ssl_ca_certs": str(self.ca), "ssl_certfile": str(self.client_cert),
                "ssl_keyfile": str(self.client_key)}


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RedisServerError("the TLS tests need the openssl command line "
                               "(apt-get install openssl)")
    res = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RedisServerError(f"openssl {' '.join(args)} failed:\n{res.stderr}")


def _issue(directory: Path, name: str, subject: str, extensions: str) -> None:
    """A P-256 key and a certificate for it, signed by the CA in directory."""
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", _DAYS, "-sha256", "-extfile", ext.name,
             "-out", f"{name}.crt", cwd=directory)


def make_certs(directory: Path) -> Certs:
    """A throwaway certificate authority, a server and a client certificate, in directory."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", _DAYS, "-sha256", "-subj", "/CN=homing test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _issue(directory, "server", "/CN=localhost",
           "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
           "keyUsage=critical,digitalSignature\n")
    _issue(directory, "client", "/CN=homing test client",
           "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
    return Certs(directory / "ca.crt", directory / "server.crt", directory / "server.key",
                 directory / "client.crt", directory / "client.key")


class TlsRedisServer(RedisServer):
    """A RedisServer on a TLS port only, client certificates required, ``default`` user off."""

    def __init__(self, tmpdir: Path, certs: Certs, **kwargs: Any) -> None:
        super().__init__(tmpdir, **kwargs)
        self.certs = certs

    @property
    def url(self) -> str:
        """The admin's URL (rediss://: TLS)."""
        return self.url_for(ADMIN_USER, ADMIN_PASSWORD)

    def url_for(self, user: str, password: str) -> str:
        return f"rediss://{user}:{password}@{HOST}:{self.port}/0"

    def _argv(self) -> list[str]:
        argv = super()._argv()
        argv[argv.index("--port") + 1] = "0"  # no plain-text port at all
        return [
            *argv,
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.certs.server_cert),
            "--tls-key-file", str(self.certs.server_key),
            "--tls-ca-cert-file", str(self.certs.ca),
            "--tls-auth-clients", "yes",
            # One word per argument: redis-server quotes an argument holding a space.
            "--user", "default", "off", "resetkeys", "-@all",
            "--user", ADMIN_USER, "on", f">{ADMIN_PASSWORD}", "~*", "&*", "+@all",
        ]  # fmt: skip

    def admin(self) -> redis.Redis:
        """A redis-py connection as the admin user, over TLS."""
        return redis.Redis.from_url(self.url, socket_timeout=5, **self.certs.redis_kwargs())

    def _wait_ready(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1,
                                      **self.certs.redis_kwargs())
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if not self.alive():
                    return False
                try:
                    if client.ping():
                        return True
                except (redis.RedisError, OSError):
                    pass
                time.sleep(0.05)
            return False
        finally:
            client.close()


def tls_supported() -> str | None:
    """None when redis-server was built with TLS, else why not (for a skip message)."""
    binary = shutil.which("redis-server")
    if binary is None:
        return "redis-server is not installed"
    res = subprocess.run([binary, "--port", "0", "--tls-port", "0"], capture_output=True,
                         text=True, timeout=10, stdin=subprocess.DEVNULL)
    out = res.stdout + res.stderr
    if "not listen anywhere" in out:
        return None
    return f"redis-server was built without TLS: {out.strip()[-300:]}"
