"""Run one measured client in a fresh process: its peak RSS and CPU time are its own.

A fresh (spawned) process starts without the harness's imports (matplotlib, the other client's SDK state), so
`ru_maxrss` at its end is the peak resident memory of exactly the code under test, imports included.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

T = TypeVar("T")
TIMEOUT_S = 6 * 3600.0


@dataclass(frozen=True)
class Isolated(Generic[T]):
    result: T
    peak_rss_mb: float
    cpu_s: float  # user + system time of the child
    wall_s: float  # the whole child, imports included


def _child(target: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...], pipe: Connection) -> None:
    started = time.perf_counter()
    try:
        result = asyncio.run(target(*args))
    except BaseException as exc:  # reported to the parent, which raises it there
        pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # Linux reports ru_maxrss in KiB.
    pipe.send(
        ("ok", Isolated(result, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, time.perf_counter() - started))
    )


def run_isolated(target: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> Isolated[T]:
    """`await target(*args)` in a spawned process; `target` and `args` must be picklable (module-level)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(target, args, child), daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(TIMEOUT_S):
            raise TimeoutError(f"{target.__name__} did not finish within {TIMEOUT_S:.0f}s")
        status, payload = parent.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"{target.__name__} died (exit code {process.exitcode})") from None
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
    if status != "ok":
        raise RuntimeError(f"{target.__name__} failed in its process: {payload}")
    isolated: Isolated[T] = payload
    return isolated
