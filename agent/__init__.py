"""Khiên agent: collects inventory and events on an agency host and ships them to the collector."""

__version__ = "0.1.0"
