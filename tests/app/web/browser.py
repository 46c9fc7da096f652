"""What the browser tests need: Debian's chromium, Steward served over HTTPS in a thread, certificate pins.

Nothing here downloads a browser: chromium comes from Debian (installed by the fixture when missing and root),
and Playwright only drives it.
"""

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pytest
import trustme
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from app.config import Settings
from app.main import create_app

CHROMIUM = Path("/usr/bin/chromium")
# What this machine's closed network needs (machines/python-svc.md): no calls home, no GPU, no sandbox as root.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() == "true"


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing; fails in CI, skips loudly elsewhere."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900, check=False)
            if done.returncode != 0:
                reason = f"`{' '.join(command)}` failed: {done.stderr.strip()[-300:]}"
                break
        if CHROMIUM.exists():
            return CHROMIUM
    else:
        reason = "not root, so chromium cannot be installed from Debian"
    message = f"{CHROMIUM} is missing and {reason or 'apt-get did not provide it'}"
    if IN_CI:
        pytest.fail(f"{message}. CI=true requires the browser tests.")
    pytest.skip(f"!!! {message}: the browser tests did NOT run (mandatory in CI) !!!")


def spki_pin(certificate_pem: bytes) -> str:
    """Chromium's --ignore-certificate-errors-spki-list value for a certificate: base64 SHA-256 of its key."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def leaf_certificate(pem_chain: bytes) -> bytes:
    start = pem_chain.index(b"-----BEGIN CERTIFICATE-----")
    end = pem_chain.index(b"-----END CERTIFICATE-----", start) + len(b"-----END CERTIFICATE-----")
    return pem_chain[start:end]


class StewardServer:
    """Steward (create_app, lifespan included) over HTTPS on 127.0.0.1, in a thread with its own event loop."""

    def __init__(self, settings_for: Callable[[str], Settings]) -> None:
        """`settings_for(base_url)`: the server learns its own URL only once its port is bound."""
        self._settings_for = settings_for
        self._tmp = tempfile.TemporaryDirectory(prefix="steward-web-")
        ca = trustme.CA()
        self.certificate_pem = ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.bytes()
        self._server_pem = Path(self._tmp.name) / "server.pem"
        self._server_pem.write_bytes(self.certificate_pem)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.base_url = f"https://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def pin(self) -> str:
        return spki_pin(leaf_certificate(self.certificate_pem))

    def __enter__(self) -> "StewardServer":
        app = create_app(self._settings_for(self.base_url))
        config = uvicorn.Config(
            app, ssl_certfile=str(self._server_pem), log_level="warning", access_log=False, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="steward-web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("Steward did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
        self._tmp.cleanup()
