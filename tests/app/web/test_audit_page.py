"""The audit verify page: the same check as `steward audit verify`, for auditors."""

from sqlalchemy import select

from app.audit.service import audit
from app.models import AuditRecord
from tests.app.web.conftest import People, Web


async def test_an_intact_log_then_a_forged_record(web: Web, people: People) -> None:
    async with web.store() as session:
        for n in range(3):
            await audit.append(session, actor="tester", action="web.test", subject=f"s{n}", payload={"n": n})
    await web.sign_in(people.auditor)
    page = await web.client.get("/audit")
    assert "Not verified yet" in page.text
    intact = await web.client.get(
        "/audit", params={"run": "true"}, headers={"HX-Request": "true", "HX-Target": "verification"}
    )
    assert intact.text.lstrip().startswith('<div id="verification">')
    assert "Intact." in intact.text
    assert "No checkpoint key is configured" in intact.text

    async with web.store() as session:
        last = (await session.execute(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1))).scalar_one()
        # Appending is all the database allows; a record whose hash does not match its content is a forgery.
        session.add(
            AuditRecord(
                seq=last.seq + 1,
                at=last.at,
                actor="mallory",
                action="plan.approved",
                subject="plan:x",
                payload={},
                prev_hash=last.hash,
                hash="f" * 64,
            )
        )
    forged = await web.client.get("/audit", params={"run": "true"})
    assert "Tampering detected" in forged.text
    assert f"the hash chain breaks at record {last.seq + 1}" in forged.text
