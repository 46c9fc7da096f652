"""Steward's FastAPI service: HTTP surface, domain rules and the store."""
