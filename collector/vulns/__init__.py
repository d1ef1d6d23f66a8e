"""Vulnerability feeds (imported offline) and matching them against host inventories."""
