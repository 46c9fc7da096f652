"""The activity clock: each customer's last activity (mail, guests' file changes, explicit events)."""
