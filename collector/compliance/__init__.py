"""Compliance: check results per host from its facts, with history (what was true on date D)."""
