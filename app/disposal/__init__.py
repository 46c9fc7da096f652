"""Executing approved plans: soft delete, permanent delete after the grace window, proof of disposal."""
