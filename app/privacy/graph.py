"""Microsoft Graph for the privacy features (disclosure notices and exports, the storage posture report).

The service builds one GraphConnector and its GraphClient per process and keeps them on `app.state`
(`graph_connector`, `graph_client`); requests borrow them. Without them the features that need Graph answer 503
instead of failing half-way.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.exceptions import AppError
from connectors.graph.client import GraphClient
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
