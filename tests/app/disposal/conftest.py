"""The deletion fixtures, plus the seeded local tenant over HTTPS and Steward's runtime signed in to it."""

from tests.app.plans.conftest import clock, make_context, store
from tests.app.plans.live_fixtures import deletion, live, tenant

__all__ = ["clock", "deletion", "live", "make_context", "store", "tenant"]
