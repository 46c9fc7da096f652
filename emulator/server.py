"""Serve the emulator over HTTPS on 127.0.0.1 with a CA made at start, in a thread of its own.

The thread owns its event loop, so synchronous clients (MSAL) called from the test's loop cannot deadlock it.
At start the state directory receives the CA bundle, the server certificate and `app-cert.pem`: the private key
and certificate of a credential registered on Steward's daemon app, for certificate (client assertion) sign-in.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from emulator.app import create_app
from emulator.identity import ensure_app_certificate
from emulator.limits import DROP_CONNECTION_EXTENSION, limits_of
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
    client_certificate: str = ""  # PEM file: private key + certificate registered on the daemon app
    web_client_id: str = ""  # Steward's web app (authorization code + PKCE sign-in, its own API)
    web_client_secret: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "authority": self.authority,
            "graph_url": self.graph_url,
            "ca_bundle": self.ca_bundle,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "control_url": self.control_url,
            "client_certificate": self.client_certificate,
            "web_client_id": self.web_client_id,
            "web_client_secret": self.web_client_secret,
        }


class EmulatorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with two changes for a test server.

    A scope extension aborts the connection, so the limits middleware's connection-reset fault closes the socket
    without any response, as a network failure would. And shutdown does not wait for idle keep-alive clients to
    answer TLS close_notify (a synchronous client sitting in its pool never does; uvicorn would wait ~30 s).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app_with_drop(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("extensions", {})[DROP_CONNECTION_EXTENSION] = self._drop
            await inner(scope, receive, send)

        self.app = app_with_drop

    def connection_made(self, transport: Any) -> None:
        # uvicorn writes a response's head and body separately; with Nagle on, the body waits for the client's
        # delayed ACK (~40 ms per request on Linux).
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    def _drop(self) -> None:
        self.transport.abort()

    def shutdown(self) -> None:
        super().shutdown()
        if self.transport.is_closing():
            self.transport.abort()


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
        self,
        tenant: Tenant,
        *,
        port: int = 0,
        state_dir: Path | None = None,
        host: str = "127.0.0.1",
        profile: str | None = None,
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
        if profile is not None:
            limits_of(self.app).use_profile(profile)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.endpoints: Endpoints

    def start(self) -> Endpoints:
        ca_path, server_path = write_tls_material(self.state_dir)
        daemon = self.tenant.apps[self.tenant.extra["steward_app_id"]]
        certificate_path = self.state_dir / "app-cert.pem"
        # The file holds a private key: created owner-only rather than narrowed after the fact.
        descriptor = os.open(certificate_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(ensure_app_certificate(self.tenant, daemon.client_id))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(server_path),
            http=EmulatorH11Protocol,
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
        web = self.tenant.apps[self.tenant.extra["web_app_id"]]
        self.endpoints = Endpoints(
            base_url=base,
            authority=f"{base}/{self.tenant.tenant_id}",
            graph_url=f"{base}/v1.0",
            ca_bundle=str(ca_path),
            tenant_id=self.tenant.tenant_id,
            client_id=daemon.client_id,
            client_secret=daemon.secrets[0],
            control_url=f"{base}/_emulator",
            client_certificate=str(certificate_path),
            web_client_id=web.client_id,
            web_client_secret=web.secrets[0],
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
