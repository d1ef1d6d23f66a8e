"""Validator for ``facts.snapshot``: the agent's compliance facts, one dict per known fact kind.

Facts are plain JSON by design (each kind documents its keys in agent/collectors/facts/), so the model
is generic but bounded: only known kind names, every kind carries ``available``, and values are
str/int/float/bool/None/list/dict with capped string lengths, list and dict sizes, nesting depth and
a total node count. Anything over a cap rejects the item with a message naming the path.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from collector.ingest.fields import Count, Strict, Text

KIND_NAMES = ("sshd", "logindefs", "pam", "accounts", "sudoers", "sysctl", "firewall", "services", "auditd",
              "timesync", "antimalware", "logging", "files", "upgrades", "storage")
KindName = Literal[KIND_NAMES]  # type: ignore[valid-type]
MAX_STR = 1024
MAX_KEY = 256
MAX_LIST = 2000
MAX_KEYS = 500
MAX_DEPTH = 6  # kinds -> kind -> e.g. accounts.users -> row -> value
MAX_NODES = 100_000  # every value in the snapshot, all kinds together
MAX_INT = 2**63 - 1


class FactsSnapshot(Strict):
    kinds: Annotated[dict[KindName, dict[str, Any]], Field(max_length=len(KIND_NAMES))]
    collected_in_ms: Count = 0
    errors: Annotated[list[Text], Field(max_length=100)] = []

    @field_validator("kinds")
    @classmethod
    def _bounded(cls, kinds: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        budget = [MAX_NODES]
        for name, facts in kinds.items():
            if not isinstance(facts.get("available"), bool):
                raise ValueError(f"{name}.available: required, true or false")
            _check(facts, name, 1, budget)
        return kinds


def _check(value: Any, path: str, depth: int, budget: list[int]) -> None:
    """Walk one value; raise ValueError naming the first path over a cap or of a wrong type."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"{path}: more than {MAX_NODES} values in the snapshot")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if len(value) > MAX_STR:
            raise ValueError(f"{path}: string longer than {MAX_STR} characters")
        return
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ValueError(f"{path}: integer out of range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: not a finite number")
        return
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise ValueError(f"{path}: list longer than {MAX_LIST} items")
        for index, item in enumerate(value):
            _check(item, f"{path}.{index}", depth + 1, budget)
        return
    if isinstance(value, dict):
        if len(value) > MAX_KEYS:
            raise ValueError(f"{path}: more than {MAX_KEYS} keys")
        for key, item in value.items():
            if not isinstance(key, str) or not key or len(key) > MAX_KEY:
                raise ValueError(f"{path}: keys must be 1-{MAX_KEY} characters")
            _check(item, f"{path}.{key}", depth + 1, budget)
        return
    raise ValueError(f"{path}: unsupported value type {type(value).__name__}")


ITEM_MODELS: dict[str, type[BaseModel]] = {"facts.snapshot": FactsSnapshot}
