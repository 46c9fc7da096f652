"""The append-only, hash-chained audit log of everything Steward decides and does."""
