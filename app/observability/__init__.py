"""Metrics, request ids and the /metrics endpoint (structured, redacted logs are in app.logs)."""
