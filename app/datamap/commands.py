"""`steward sync`: one sync + classify + label cycle against the configured tenant.

Registered on the main typer app by app/cli.py. Exit codes: 0 the cycle ran (containers that failed are listed),
1 the sync could not start (credentials, labels the policy names that the tenant lacks), 2 bad settings.
"""

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from app.config import Settings
    from jobs.sync import CycleReport

console = Console()
errors = Console(stderr=True)


def sync(
    as_json: Annotated[bool, typer.Option("--json", help="Print the cycle report as one JSON line.")] = False,
) -> None:
    """Sync every mailbox folder and drive into the data map, classify what changed, apply the policy's labels."""
    from app.cli import _settings
    from connectors.base import ConnectorError
    from jobs.sync import SyncConfigurationError

    settings = _settings()
    try:
        report = asyncio.run(_cycle(settings))
    except (SyncConfigurationError, ConnectorError) as error:
        errors.print(f"[red]sync could not run:[/red] {error}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))  # noqa: T201
        return
    _print_report(report)


async def _cycle(settings: "Settings") -> "CycleReport":
    from jobs.runtime import Runtime
    from jobs.sync import SyncRuntime, run_sync_cycle

    runtime = await Runtime.open(settings)
    try:
        sync_runtime = await SyncRuntime.start(runtime.connector, settings, policy=runtime.policy)
        return await run_sync_cycle(runtime.sessionmaker, runtime.connector, sync_runtime)
    finally:
        await runtime.aclose()


def _print_report(report: "CycleReport") -> None:
    table = Table(title="Sync cycle", show_header=False)
    table.add_row("mailboxes / drives", f"{report.mailboxes} / {report.drives}")
    datamap = report.datamap
    table.add_row("pages", str(datamap.pages))
    table.add_row("items new / changed / removed", f"{datamap.created} / {datamap.changed} / {datamap.removed}")
    table.add_row("content read / not read", f"{datamap.content_read} / {datamap.content_skipped}")
    labels = report.labels
    table.add_row("labels applied / already there", f"{labels.applied} / {labels.already_labeled}")
    table.add_row("kept higher / skipped / failed", f"{labels.kept_higher} / {labels.skipped} / {labels.failed}")
    table.add_row("deferred / in progress", f"{labels.deferred} / {labels.in_progress}")
    if labels.stopped:
        table.add_row("labeling stopped", labels.stopped)
    console.print(table)
    for unit in report.parked:
        console.print(f"[yellow]parked[/yellow] {unit}: Graph asked to wait; it resumes in a later cycle")
    for error in report.errors:
        errors.print(f"[red]error[/red] {error}")
