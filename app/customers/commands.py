"""`steward customers import FILE`: load the customer registry (CSV or JSON) into the store.

Registered on the main typer app by app/cli.py. Exit codes: 0 imported (rejected rows are listed and leave the
good rows stored), 1 the file could not be read, 2 bad settings.
"""

import asyncio
import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from app.config import Settings
    from app.customers.schemas import ImportReport

console = Console()
errors = Console(stderr=True)
customers_app = typer.Typer(help="The customer registry.", no_args_is_help=True)


@customers_app.command("import")
def import_registry(
    file: Annotated[Path, typer.Argument(help="Registry file: .csv or .json (as the emulator's seed writes it).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the import report as one JSON line.")] = False,
) -> None:
    """Import customers; re-importing the same file changes nothing. Bad rows are reported with their numbers."""
    from app.cli import _settings
    from app.exceptions import AppError

    try:
        data = file.read_bytes()
    except OSError as error:
        errors.print(f"[red]cannot read {file}:[/red] {error.strerror}")
        raise typer.Exit(1) from None
    try:
        report = asyncio.run(_import(_settings(), data, file.name))
    except AppError as error:
        errors.print(f"[red]import refused:[/red] {error.message}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), ensure_ascii=False))  # noqa: T201
        return
    _print_report(report)


async def _import(settings: "Settings", data: bytes, filename: str) -> "ImportReport":
    from app.customers.importing import parse_registry_file
    from app.customers.service import customers_service
    from app.db.engine import create_engine, create_sessionmaker

    parsed = parse_registry_file(data, filename=filename)
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await customers_service.import_file(session, parsed, actor=f"cli:{getpass.getuser()}")
    finally:
        await engine.dispose()


def _print_report(report: "ImportReport") -> None:
    summary = Table(title=f"Customer registry import ({report.format}, {report.rows} rows)", show_header=False)
    for name in ("created", "updated", "unchanged"):
        summary.add_row(name, str(getattr(report, name)))
    summary.add_row("rejected", str(len(report.rejected)))
    if report.ignored_columns:
        summary.add_row("ignored columns", ", ".join(report.ignored_columns))
    console.print(summary)
    for problem in report.rejected:
        errors.print(f"row {problem.row} ({problem.id or 'no id'}): " + "; ".join(problem.errors))
    for note in report.notes:
        console.print(f"row {note.row} ({note.id}): {note.note}")
