"""Notifications: the transactional outbox and its relay to Teams (bot or Workflows webhook) and mail."""
