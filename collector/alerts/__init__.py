"""Alerts: what detection rules raised, deduplicated per rule, host and group, with triage status."""
