"""``RuleSet``: loaded rules indexed for the engine."""

from __future__ import annotations

from collections.abc import Iterable

from rules.detect.model import Rule


class RuleSet:
    """Rules by id (sorted) and by event type; ``max_window_s`` says how much history rebuilds state."""

    def __init__(self, rules: Iterable[Rule], files: tuple[str, ...] = ()) -> None:
        ordered = sorted(rules, key=lambda r: r.id)
        self.rules: dict[str, Rule] = {r.id: r for r in ordered}
        self.files = files
        self._by_type: dict[str, list[Rule]] = {}
        for rule in ordered:
            for event_type in sorted(rule.event_types):
                self._by_type.setdefault(event_type, []).append(rule)
        self._frozen = {t: tuple(rs) for t, rs in self._by_type.items()}
        self.max_window_s = max((r.window_s for r in ordered), default=0)

    def by_event_type(self, event_type: str) -> list[Rule]:
        """Rules that look at ``event_type``, in rule-id order."""
        return list(self._by_type.get(event_type, ()))

    def rules_for(self, event_type: str) -> tuple[Rule, ...]:
        """Like by_event_type without the copy (the engine calls it once per event)."""
        return self._frozen.get(event_type, ())

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules.values())

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules)"
