"""Composition root: the ``khien`` command and the one process that serves collector and console.

The collector may not import the console (DESIGN.md §3), so the process that serves both lives here.
"""
