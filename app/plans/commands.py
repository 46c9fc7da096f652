"""CLI commands for deletion: `steward plan`, `steward execute`, `steward scheduler`, `steward audit verify`.

Registered on the main typer app by app/cli.py. Heavy imports stay inside the commands so `steward --help`
stays fast. Exit codes: 0 done, 1 refused or failed checks, 2 bad settings or input.
"""

import asyncio
import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from app.config import Settings

console = Console()
errors = Console(stderr=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


def _settings() -> "Settings":
    from app.cli import _settings as load

    return load()


def plan(
    customer: Annotated[list[str], typer.Option("--customer", "-c", help="Customer id (repeatable).")],
    trigger: Annotated[
        str, typer.Option(help="customer_request | inactivity | company_decision.")
    ] = "company_decision",
    reason: Annotated[str, typer.Option(help="Why (required for a company decision).")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Build and show the plan; never submit it.")] = False,
    include_shared: Annotated[
        bool, typer.Option(help="Also delete items shared with other customers (a separate decision).")
    ] = False,
    export: Annotated[Path | None, typer.Option(help="Write the manifest to this .csv or .json file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line.")] = False,
) -> None:
    """Build a deletion plan from the data map (a dry run shows counts, sizes, exclusions and the timeline)."""
    from app.exceptions import AppError
    from app.models import TriggerKind
    from app.plans.service import PlanRequest, Requester

    try:
        kind = TriggerKind(trigger)
    except ValueError:
        errors.print(f"[red]unknown trigger[/red] {trigger!r}")
        raise typer.Exit(2) from None
    # A CLI user is not authenticated: the plan is attributed to the operator account as a service, so the
    # approval rules treat it like automation (the configured owner cannot approve it either).
    requester = Requester(f"cli:{getpass.getuser()}", f"steward CLI ({getpass.getuser()})", is_service=True)
    request = PlanRequest(kind, tuple(customer), requester, reason=reason, include_shared=include_shared)
    try:
        result = asyncio.run(_plan(_settings(), request, dry_run=dry_run, export=export))
    except AppError as exc:
        errors.print(f"[red]plan refused:[/red] {exc.message}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(result, ensure_ascii=False))  # noqa: T201
        return
    table = Table(title=f"Plan {result['id']} ({result['status']})", show_header=False)
    for key in ("trigger", "customer_ids", "items", "bytes", "excluded", "exclusions", "required_approvals"):
        table.add_row(key, str(result[key]))
    table.add_row("manifest_hash", result["manifest_hash"])
    console.print(table)
    for stage in result["timeline"]:
        console.print(f"  +{stage['after_days']:>3} days  {stage['what']}")


async def _plan(settings: "Settings", request: Any, *, dry_run: bool, export: Path | None) -> dict[str, Any]:
    from app.plans.service import build_plan, export_csv, export_json, plan_items, summary
    from jobs.runtime import Runtime

    runtime = await Runtime.open(settings)
    try:
        async with runtime.sessionmaker() as session, session.begin():
            built = await build_plan(session, runtime.context(), request, dry_run=dry_run)
            items = await plan_items(session, built.id)
            text = export_csv(items) if export and export.suffix.lower() == ".csv" else export_json(built, items)
            result = summary(built, items)
    finally:
        await runtime.aclose()
    if export is not None:
        await asyncio.to_thread(export.write_text, text, encoding="utf-8")
    return result


def execute(plan_id: Annotated[str, typer.Argument(help="The approved plan to run (or resume).")]) -> None:
    """Run an approved plan now: soft delete, then permanent deletion if its grace window has passed."""
    from app.disposal.executor import ExecutionRefused

    try:
        report = asyncio.run(_execute(_settings(), plan_id))
    except ExecutionRefused as exc:
        errors.print(f"[red]not executed:[/red] {exc}")
        raise typer.Exit(1) from None
    print(json.dumps({"plan_id": report.plan_id, "status": report.status, "outcomes": report.outcomes}))  # noqa: T201


async def _execute(settings: "Settings", plan_id: str) -> Any:
    from jobs.runtime import Runtime

    runtime = await Runtime.open(settings)
    try:
        return await runtime.executor().run(plan_id)
    finally:
        await runtime.aclose()


def scheduler() -> None:
    """Run the scheduler (one leader per deployment; start as many as you like, the others wait)."""
    from jobs.scheduler import main

    main(_settings())


@audit_app.command("verify")
def audit_verify(
    public_key: Annotated[
        Path | None, typer.Option(help="Ed25519 public key (PEM); default: STEWARD_AUDIT_SIGNING_KEY_PATH.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON line.")] = False,
) -> None:
    """Check the audit log: hash chain, signed checkpoints, truncation. Exit 1 when anything is wrong."""
    report = asyncio.run(_verify(_settings(), public_key))
    if as_json:
        print(json.dumps({"intact": report.intact, **report.__dict__}))  # noqa: T201
    else:
        console.print(
            f"records: {report.records}  checkpoints: {report.checkpoints}  unsigned tail: {report.unsigned_tail}"
        )
        for problem in report.problems:
            errors.print(f"[red]✗[/red] {problem}")
        if report.intact:
            console.print("[green]audit log intact[/green]")
    if not report.intact:
        raise typer.Exit(1)


async def _verify(settings: "Settings", public_key: Path | None) -> Any:
    from app.audit.checkpoints import load_public_key, verify_audit
    from app.db.engine import create_engine, create_sessionmaker

    key_path = public_key or settings.audit_signing_key_path
    key = load_public_key(key_path) if key_path else None
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return await verify_audit(session, key)
    finally:
        await engine.dispose()
