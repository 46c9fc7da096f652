"""Integrations with outside systems. Configured by explicit arguments; never imports app/."""
