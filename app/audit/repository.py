from collections.abc import AsyncIterator

from app.kit.repository import RepositoryBase
from app.models import AuditRecord


class AuditRecordRepository(RepositoryBase[AuditRecord]):
    model = AuditRecord

    async def get_last(self) -> AuditRecord | None:
        return await self.get_one_or_none(self.select().order_by(AuditRecord.seq.desc()).limit(1))

    async def stream_in_order(self, *, batch_size: int = 500) -> AsyncIterator[AuditRecord]:
        result = await self.session.stream_scalars(
            self.select().order_by(AuditRecord.seq).execution_options(yield_per=batch_size)
        )
        async for record in result:
            yield record
