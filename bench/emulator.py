"""The local tenant for benchmarks, in a process of its own so its CPU time never competes with the client's."""

import contextlib
import multiprocessing
from collections.abc import Iterator
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

from emulator.seed import SeedConfig

START_TIMEOUT_S = 300.0


def _serve(config: dict[str, Any], profile: str, overrides: dict[str, Any], pipe: Connection) -> None:
    from emulator.limits import limits_of
    from emulator.seed import build_tenant
    from emulator.server import EmulatorServer

    tenant = build_tenant(SeedConfig(**config))
    with EmulatorServer(tenant, profile=profile) as server:
        limits = limits_of(server.app)
        limits.profile = limits.profile_with(None, overrides)
        files = sum(1 for item in tenant.files.items.values() if not item.is_folder)
        pipe.send(
            {
                **server.endpoints.as_dict(),
                "base_url": server.endpoints.base_url,
                "profile": limits.profile.model_dump(),
                "messages": tenant.mail.message_count(),
                "files": files,
            }
        )
        pipe.recv()  # any message (or the parent closing the pipe) stops the server


@contextlib.contextmanager
def emulator_process(config: SeedConfig, *, profile: str, **overrides: Any) -> Iterator[dict[str, Any]]:
    """Yield the running tenant's endpoints, its profile and its size."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(asdict(config), profile, overrides, child), daemon=True)
    process.start()
    try:
        if not parent.poll(START_TIMEOUT_S):
            raise RuntimeError(f"the emulator did not start within {START_TIMEOUT_S:.0f}s")
        info: dict[str, Any] = parent.recv()
        yield info
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            parent.send("stop")
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
