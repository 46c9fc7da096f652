"""The local tenant for benchmarks: sized from an item count, served in a process of its own.

The emulator runs in a spawned process so its CPU time (rendering pages, TLS) never counts against the client
being measured, and so a 1M-item tenant's memory is not the client's.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from emulator.seed import SeedConfig

START_TIMEOUT_S = 900.0  # a 1M-item tenant takes about a minute to seed; leave room on a loaded machine
MIN_MAILBOXES = 20  # the Graph connector issue's acceptance tenant: >= 20 mailboxes
CALIBRATION_CUSTOMERS = 40
SIZE_MARGIN = 1.002

# Volume knobs for tenants of 10k items and more: each customer adds 240 messages and 40 files.
LARGE = SeedConfig(
    seed=3,
    customers=0,
    staff=MIN_MAILBOXES,
    threads_per_customer=30,
    messages_per_thread=8,
    internal_messages_per_mailbox=200,
    files_per_customer=20,
    internal_files_per_drive=50,
)
# Below 10k items: lighter knobs, still 20 mailboxes.
SMALL = SeedConfig(
    seed=3,
    customers=0,
    staff=MIN_MAILBOXES,
    threads_per_customer=6,
    messages_per_thread=4,
    internal_messages_per_mailbox=20,
    files_per_customer=4,
    internal_files_per_drive=5,
)
# The smoke test's tenant: a few dozen items, three mailboxes, seconds end to end.
TINY = SeedConfig(
    seed=3,
    customers=3,
    staff=3,
    threads_per_customer=1,
    messages_per_thread=2,
    internal_messages_per_mailbox=2,
    files_per_customer=1,
    internal_files_per_drive=1,
)


@dataclass(frozen=True)
class TenantSize:
    messages: int
    files: int

    @property
    def items(self) -> int:
        return self.messages + self.files


def count_items(config: SeedConfig) -> TenantSize:
    """Seed in this process and count (cheap for the small tenants used to calibrate)."""
    from emulator.seed import build_tenant

    tenant = build_tenant(config)
    files = sum(1 for item in tenant.files.items.values() if not item.is_folder)
    return TenantSize(tenant.mail.message_count(), files)


def config_for_items(items: int) -> SeedConfig:
    """A seed config of about `items` messages + files across 20 mailboxes (calibrated, not guessed).

    Items grow linearly with the number of customers, so two small seeds give the base and the slope.
    """
    knobs = LARGE if items >= 10_000 else SMALL
    base = count_items(replace(knobs, customers=0)).items
    slope = (count_items(replace(knobs, customers=CALIBRATION_CUSTOMERS)).items - base) / CALIBRATION_CUSTOMERS
    if items <= base or slope <= 0:
        return knobs
    # A little above the line: the seed's randomness must not leave the tenant just short of the size asked for.
    return replace(knobs, customers=math.ceil((items - base) / slope * SIZE_MARGIN) + 1)


@dataclass(frozen=True)
class TenantInfo:
    """How to reach the running tenant, what it holds and the profile in force."""

    endpoints: dict[str, str]
    base_url: str
    profile: dict[str, Any]
    messages: int
    files: int
    mailboxes: int
    drives: int
    registry: list[dict[str, Any]]  # the seed's customer registry, as steward imports it
    labels: list[tuple[str, str, int]]  # the tenant's sensitivity labels: (id, name, priority)

    @property
    def items(self) -> int:
        return self.messages + self.files


def _serve(config: dict[str, Any], profile: str, overrides: dict[str, Any], pipe: Connection) -> None:
    from emulator.limits import limits_of
    from emulator.seed import build_tenant, registry_rows
    from emulator.server import EmulatorServer

    tenant = build_tenant(SeedConfig(**config))
    with EmulatorServer(tenant, profile=profile) as server:
        limits = limits_of(server.app)
        limits.profile = limits.profile_with(None, overrides)
        files = sum(1 for item in tenant.files.items.values() if not item.is_folder)
        pipe.send(
            TenantInfo(
                endpoints=server.endpoints.as_dict(),
                base_url=server.endpoints.base_url,
                profile=limits.profile.model_dump(),
                messages=tenant.mail.message_count(),
                files=files,
                mailboxes=len(tenant.mail.mailboxes),
                drives=len(tenant.files.drives),
                registry=registry_rows(tenant),
                labels=[(label.id, label.name, label.priority) for label in tenant.labels],
            )
        )
        pipe.recv()  # any message (or the parent closing the pipe) stops the server


@contextlib.contextmanager
def running_tenant(config: SeedConfig, *, profile: str, **overrides: Any) -> Iterator[TenantInfo]:
    """Seed and serve the tenant in a child process; yield how to reach it; stop it on exit."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(asdict(config), profile, overrides, child), daemon=True)
    process.start()
    child.close()
    try:
        waited = 0.0
        while not parent.poll(1.0):
            waited += 1.0
            if not process.is_alive():
                raise RuntimeError(f"the emulator process exited with code {process.exitcode} before serving")
            if waited >= START_TIMEOUT_S:
                raise RuntimeError(f"the emulator did not start within {START_TIMEOUT_S:.0f}s")
        info: TenantInfo = parent.recv()
        yield info
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            parent.send("stop")
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
