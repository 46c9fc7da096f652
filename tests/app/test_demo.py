"""The demo end to end: a real emulator process, real MSAL and msgraph-sdk over HTTPS, a real store."""

import pytest
from alembic.script import ScriptDirectory

from app.db.migrate import alembic_config
from app.demo import DemoError, run_demo


@pytest.mark.slow
async def test_demo_lists_the_seeded_tenant_and_prepares_the_store() -> None:
    summary = await run_demo(seed=7, customers=3)
    assert "User.Read.All" in summary.token_roles
    assert summary.users > summary.guests > 0
    assert len(summary.mailboxes) == 3
    assert all(mailbox.folders > 0 and mailbox.messages > 0 for mailbox in summary.mailboxes)
    assert summary.sites > 0
    assert summary.site_drives >= summary.sites
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert summary.database == f"sqlite at migration {head}"
    assert summary.audit_records == 1


async def test_an_emulator_that_cannot_start_is_reported() -> None:
    with pytest.raises(DemoError, match="exited with code 2 before it was ready"):
        await run_demo(customers=-1)
