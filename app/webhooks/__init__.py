"""Inbound webhooks: signed admin triggers and Microsoft Graph change notifications."""
