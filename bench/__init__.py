"""Benchmarks (`python -m bench`): measured against the local tenant, never asserted in tests."""
