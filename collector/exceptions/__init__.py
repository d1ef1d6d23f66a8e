"""Exceptions (risk acceptance): a failed check or a finding accepted for a host, a unit or everything, until expiry."""
