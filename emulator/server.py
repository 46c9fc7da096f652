"""Serve the emulator over HTTPS on 127.0.0.1 with a CA made at start, in a thread of its own.

The thread owns its event loop, so synchronous clients (MSAL) called from the test's loop cannot deadlock it.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import trustme
import uvicorn

from emulator.app import create_app
from emulator.state import Tenant


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What a client needs to reach this tenant; printed by `serve --json`."""

    base_url: str
    authority: str
    graph_url: str
    ca_bundle: str
    tenant_id: str
    client_id: str
    client_secret: str
    control_url: str

    def as_dict(self) -> dict[str, str]:
        return {
            "authority": self.authority,
            "graph_url": self.graph_url,
            "ca_bundle": self.ca_bundle,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "control_url": self.control_url,
        }


def write_tls_material(state_dir: Path) -> tuple[Path, Path]:
    """A fresh CA (RSA, so MSAL-compatible certificates can be issued from it too) and a server certificate."""
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    ca_path = state_dir / "ca.pem"
    server_path = state_dir / "server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.RSA).private_key_and_cert_chain_pem.write_to_path(
        str(server_path)
    )
    return ca_path, server_path


class EmulatorServer:
    """Context manager: `with EmulatorServer(tenant) as server: server.endpoints.graph_url`."""

    def __init__(
        self, tenant: Tenant, *, port: int = 0, state_dir: Path | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.tenant = tenant
        self._host = host
        self._port = port
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="steward-emulator-")
            state_dir = Path(self._tmp.name)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = state_dir
        self.app = create_app(tenant)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.endpoints: Endpoints

    def start(self) -> Endpoints:
        ca_path, server_path = write_tls_material(self.state_dir)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(server_path),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.01)
        base = f"https://{self._host}:{port}"
        daemon = self.tenant.apps[self.tenant.extra["steward_app_id"]]
        self.endpoints = Endpoints(
            base_url=base,
            authority=f"{base}/{self.tenant.tenant_id}",
            graph_url=f"{base}/v1.0",
            ca_bundle=str(ca_path),
            tenant_id=self.tenant.tenant_id,
            client_id=daemon.client_id,
            client_secret=daemon.secrets[0],
            control_url=f"{base}/_emulator",
        )
        self.app.state.base_url = base
        return self.endpoints

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
