"""The store: async engine and session factories, declarative base, Alembic migrations."""
