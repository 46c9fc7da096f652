"""Scheduled and background work, run in its own process (never inside the API workers)."""
