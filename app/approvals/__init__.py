"""Approving deletion plans: the rules, the decisions, expiry, reminders and escalation."""
