"""Deletion plans: triggers, exact manifests built from the data map, exclusions, caps, dry runs and exports."""
