"""Compliance facts (``facts.snapshot``): fixed fact kinds collected on the host, one module per kind.

Each kind is ``collect_<kind>(root, run) -> dict``, pure over a filesystem root and a command runner;
its module docstring lists the keys. The server evaluates checks over these facts; it never sends
commands for the agent to run.
"""

from agent.collectors.facts.collector import FACTS_FIELDS, FactsCollector, collect_facts
from agent.collectors.facts.kinds import KIND_NAMES, KINDS

__all__ = ["FACTS_FIELDS", "KINDS", "KIND_NAMES", "FactsCollector", "collect_facts"]
