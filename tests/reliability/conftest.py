"""The reliability suite reuses the fixtures of the features it exercises: the scripted Graph and the local tenant
over HTTPS (tests/connectors/graph), and the running app with its store (tests/app/webhooks)."""

from tests.app.webhooks.conftest import client, store
from tests.connectors.graph.conftest import clock, fake_credential, live, live_graph, mock_graph, park_store, tenant

__all__ = ["client", "clock", "fake_credential", "live", "live_graph", "mock_graph", "park_store", "store", "tenant"]
