"""Helpers that know nothing about any Steward domain."""
