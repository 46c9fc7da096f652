"""Everything a scheduled job or a task needs, built once per process from the settings."""

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.disposal.executor import PlanExecutor
from app.disposal.graph import GraphDisposal
from app.notifications.mail import GraphMailer
from app.notifications.relay import Mailer, Relay
from app.plans.context import DeletionContext, policy_for
from app.plans.datamap import DataMapReader
from app.plans.datamap_store import StoreDataMap
from app.plans.holds import GraphHolds
from app.policy import Policy
from app.teams.sender import CardSender, card_sender
from connectors.graph.auth import ClientCertificate, ClientCredential, ClientSecret, MsalCredential
from connectors.graph.budget import ThrottleBudget
from connectors.graph.client import GraphClient, build_graph_client
from connectors.graph.connector import GraphConnector

log = logging.getLogger(__name__)


def _credential(settings: Settings) -> ClientCredential:
    if settings.client_certificate_path is not None:
        password = settings.client_certificate_password
        return ClientCertificate(settings.client_certificate_path, password.get_secret_value() if password else None)
    return ClientSecret(settings.client_secret.get_secret_value())


@dataclass
class Runtime:
    settings: Settings
    policy: Policy
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    credential: MsalCredential
    client: GraphClient
    connector: GraphConnector
    datamap: DataMapReader
    mailer: Mailer | None
    _cards: CardSender | None = None
    _cards_built: bool = False

    @classmethod
    async def open(cls, settings: Settings, *, datamap: DataMapReader | None = None) -> "Runtime":
        engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        credential = MsalCredential(
            tenant_id=settings.tenant_id,
            client_id=settings.client_id,
            credential=_credential(settings),
            authority_host=settings.authority_host,
            ca_bundle=Path(settings.ca_bundle) if settings.ca_bundle else None,
            timeout_s=settings.http_timeout_s,
        )
        client = build_graph_client(
            credential,
            base_url=settings.graph_base_url,
            allowed_hosts=settings.graph_allowed_hosts,
            ca_bundle=settings.ca_bundle,
            scopes=[settings.graph_scope],
            timeout_s=settings.http_timeout_s,
        )
        connector = GraphConnector(
            client,
            budget=ThrottleBudget(),
            user_agent=settings.user_agent,
            allowed_hosts=settings.graph_allowed_hosts,
            token_refresh=credential.force_refresh,
        )
        mailer = GraphMailer(connector, settings.notification_mailbox) if settings.notification_mailbox else None
        return cls(
            settings=settings,
            policy=policy_for(settings),
            engine=engine,
            sessionmaker=sessionmaker,
            credential=credential,
            client=client,
            connector=connector,
            datamap=datamap or StoreDataMap(sessionmaker),
            mailer=mailer,
        )

    @property
    def cards(self) -> CardSender | None:
        # Built on first use: the Teams SDK costs seconds to import, and most runs (execution) never post a card.
        if not self._cards_built:
            self._cards, self._cards_built = card_sender(self.settings), True
        return self._cards

    def context(self) -> DeletionContext:
        # A fresh GraphHolds per use: its hold report and container caches belong to one plan or chunk.
        return DeletionContext(
            settings=self.settings,
            policy=self.policy,
            external_holds=GraphHolds(self.connector, self.client),
            datamap=self.datamap,
        )

    def executor(self) -> PlanExecutor:
        return PlanExecutor(self.sessionmaker, self.context(), GraphDisposal(self.connector, self.client))

    def relay(self) -> Relay:
        return Relay(self.sessionmaker, self.settings, cards=self.cards, mailer=self.mailer)

    async def aclose(self) -> None:
        if self._cards is not None:
            await self._cards.aclose()
        await self.client.aclose()
        await self.credential.close()
        await self.engine.dispose()
