"""Microsoft Graph for the privacy features (disclosure notices and exports, the storage posture report).

The service builds one GraphConnector and its GraphClient per process (`open_graph_access`, in the app's lifespan)
and keeps them on `app.state` (`graph_connector`, `graph_client`); requests borrow them. Without them the features
that need Graph answer 503 instead of failing half-way.
"""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from app.config import Settings
from app.exceptions import AppError
from connectors.graph.auth import ClientCertificate, ClientCredential, ClientSecret, MsalCredential
from connectors.graph.budget import ThrottleBudget
from connectors.graph.client import GraphClient, build_graph_client
from connectors.graph.connector import GraphConnector


class GraphUnavailable(AppError):
    status_code = 503
    headers = {"Retry-After": "60"}


@dataclass(frozen=True, slots=True)
class GraphAccess:
    connector: GraphConnector
    # The SDK's request builders, for the few reads the connector does not offer as operations.
    client: GraphClient


def graph_access(request: Request) -> GraphAccess:
    connector: GraphConnector | None = getattr(request.app.state, "graph_connector", None)
    client: GraphClient | None = getattr(request.app.state, "graph_client", None)
    if connector is None or client is None:
        raise GraphUnavailable("Microsoft Graph is not configured for this service")
    return GraphAccess(connector, client)


GraphDep = Annotated[GraphAccess, Depends(graph_access)]


def _credential(settings: Settings) -> ClientCredential:
    if settings.client_certificate_path is not None:
        password = settings.client_certificate_password
        return ClientCertificate(settings.client_certificate_path, password.get_secret_value() if password else None)
    return ClientSecret(settings.client_secret.get_secret_value())


@contextlib.asynccontextmanager
async def open_graph_access(settings: Settings) -> AsyncIterator[GraphAccess]:
    """Steward's app signed in to Graph with the configured credential, for the life of the process."""
    credential = MsalCredential(
        tenant_id=settings.tenant_id,
        client_id=settings.client_id,
        credential=_credential(settings),
        authority_host=settings.authority_host,
        ca_bundle=settings.ca_bundle,
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
    try:
        yield GraphAccess(connector, client)
    finally:
        await client.aclose()
        await credential.close()


def attach(app: FastAPI, graph: GraphAccess) -> None:
    app.state.graph_connector = graph.connector
    app.state.graph_client = graph.client
