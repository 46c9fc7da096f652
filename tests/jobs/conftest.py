"""The deletion fixtures (tests/app/plans/conftest.py) for the scheduler and task tests."""

from tests.app.plans.conftest import clock, make_context, store

__all__ = ["clock", "make_context", "store"]
