"""The `steward` command."""

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.customers import commands as customer_commands
from app.datamap import commands as sync_commands
from app.plans import commands as deletion_commands

if TYPE_CHECKING:
    from app.config import Settings
    from app.demo import DemoSummary

# Tracebacks with local variables would print settings, secrets included.
app = typer.Typer(
    help="Steward: enforces a Microsoft 365 reseller's customer-privacy policy.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="The store.", no_args_is_help=True)
emulator_app = typer.Typer(help="The local Microsoft 365 tenant.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(emulator_app, name="emulator")
policy_app = typer.Typer(help="The privacy policy file.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(deletion_commands.audit_app, name="audit")
app.command()(deletion_commands.plan)
app.command()(deletion_commands.execute)
app.command()(deletion_commands.scheduler)
app.add_typer(customer_commands.customers_app, name="customers")
app.command()(sync_commands.sync)

console = Console()
errors = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Run the HTTP service."""
    import uvicorn

    _settings()  # fail here, readably, rather than inside uvicorn's factory call
    # Steward's own JSON logs (app/logs.py) replace uvicorn's: its access lines would print query strings, which
    # can carry sign-in codes; app/middleware.py logs each request by route template instead.
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, access_log=False, log_config=None)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database named by STEWARD_DATABASE_URL."""
    from app.db.migrate import upgrade

    upgrade(_settings().database_url, revision)
    console.print(f"database at revision [bold]{revision}[/bold]")


@emulator_app.command(
    "serve",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def emulator_serve(ctx: typer.Context) -> None:
    """Run the local tenant: `python -m emulator serve` with every argument passed through (try --help)."""
    # Replaced by the emulator process, so the product never imports emulator/.
    os.execv(sys.executable, [sys.executable, "-m", "emulator", "serve", *ctx.args])  # noqa: S606


@policy_app.command("check")
def policy_check(file: Annotated[Path, typer.Argument(help="Policy YAML file to validate.")]) -> None:
    """Validate a policy file; every problem is printed as FILE:LINE:COL. Exit 0 = valid, 1 = invalid."""
    from app.policy import check_policy_file

    problems = check_policy_file(file)
    for problem in problems:
        errors.print(problem, markup=False, highlight=False)
    if not problems:
        console.print(f"{file}: valid")
    raise typer.Exit(1 if problems else 0)


@app.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the generated tenant.")] = 7,
    customers: Annotated[int, typer.Option(min=1, help="Customers in the generated tenant.")] = 12,
    database_url: Annotated[
        str | None, typer.Option(help="Store to migrate (default: a temporary SQLite file).")
    ] = None,
) -> None:
    """Start the local tenant, sign in as Steward's app, list the tenant and prepare the store."""
    # Imported here so that `steward --help` does not pay for msgraph-sdk's import.
    from app.demo import DemoError, run_demo
    from connectors.base import ConnectorError

    if not as_json:
        console.print("starting the local Microsoft 365 tenant and listing it through Microsoft Graph…")
    try:
        summary = asyncio.run(run_demo(seed=seed, customers=customers, database_url=database_url))
    except (DemoError, ConnectorError) as exc:
        errors.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))  # noqa: T201
        return
    _print_summary(summary)


@app.command()
def references(
    as_json: Annotated[bool, typer.Option("--json", help="Print the references as JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the references as CSV.")] = False,
) -> None:
    """Marketing references: buyer name and products of customers who allow it, with the consent's source."""
    from app.references.cli import load_references, render

    if as_json and as_csv:
        errors.print("[red]choose one of --json and --csv[/red]")
        raise typer.Exit(2)
    found = asyncio.run(load_references(_settings()))
    if as_json or as_csv:
        print(render(found, "json" if as_json else "csv"), end="" if as_csv else "\n")  # noqa: T201
        return
    table = Table(title=f"Marketing references ({len(found)})")
    for column in ("customer", "products", "consent source", "consent time"):
        table.add_column(column)
    for line in found:
        table.add_row(line.customer_name, "; ".join(line.products), line.consent_source, line.consent_at.isoformat())
    console.print(table)


def _settings() -> "Settings":
    from pydantic import ValidationError

    from app.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        errors.print("[red]invalid settings[/red] (see .env.example):")
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            errors.print(f"  STEWARD_{field.upper()}: {error['msg']}" if error["loc"] else f"  {error['msg']}")
        raise typer.Exit(2) from None


def _print_summary(summary: "DemoSummary") -> None:
    tenant = Table(title=f"Tenant {summary.tenant_id}", show_header=False)
    tenant.add_row("Graph", summary.graph_url)
    tenant.add_row("app roles in token", ", ".join(summary.token_roles) or "(none)")
    tenant.add_row("users (guests)", f"{summary.users} ({summary.guests})")
    tenant.add_row("SharePoint sites / their drives", f"{summary.sites} / {summary.site_drives}")
    tenant.add_row("store", summary.database)
    tenant.add_row("audit records (chain verified)", str(summary.audit_records))
    tenant.add_row("elapsed", f"{summary.seconds:.1f} s")
    console.print(tenant)
    mailboxes = Table(title="Sampled mailboxes (paged through Graph)")
    mailboxes.add_column("mailbox")
    mailboxes.add_column("folders", justify="right")
    mailboxes.add_column("messages", justify="right")
    for mailbox in summary.mailboxes:
        mailboxes.add_row(mailbox.user, str(mailbox.folders), str(mailbox.messages))
    console.print(mailboxes)


def main() -> None:
    app()
