"""`steward references`: the references as the API serves them, read straight from the store."""

import json
from typing import Literal

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.policy import default_policy, load_policy
from app.privacy.guard import Audience, DisclosureGuard
from app.references.service import Reference, list_references, to_csv

OutputFormat = Literal["json", "csv"]


async def load_references(settings: Settings) -> list[Reference]:
    policy = load_policy(settings.policy_path) if settings.policy_path else default_policy()
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return await list_references(session, DisclosureGuard(policy, Audience.PUBLIC))
    finally:
        await engine.dispose()


def render(references: list[Reference], output: OutputFormat) -> str:
    if output == "csv":
        return to_csv(references)
    rows = [
        {
            "customer_name": reference.customer_name,
            "products": list(reference.products),
            "consent_source": reference.consent_source,
            "consent_at": reference.consent_at.isoformat(),
        }
        for reference in references
    ]
    return json.dumps(rows, ensure_ascii=False, indent=2)
