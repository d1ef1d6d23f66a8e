"""Findings: what a unit must fix — from feeds matching, patches, checks, scans and end-of-life data."""
