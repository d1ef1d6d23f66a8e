"""The unit scope every read path filters by (DESIGN.md §5): computed once per caller."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, true


@dataclass(frozen=True, slots=True)
class Scope:
    """Which units a caller may see: everything, or an explicit set of unit ids."""

    all_units: bool
    unit_ids: frozenset[int] = frozenset()

    @classmethod
    def everything(cls) -> Scope:
        return cls(all_units=True)

    @classmethod
    def units(cls, ids: frozenset[int]) -> Scope:
        return cls(all_units=False, unit_ids=ids)

    def allows(self, unit_id: int) -> bool:
        """Whether a row of this unit is visible in the scope."""
        return self.all_units or unit_id in self.unit_ids

    def where(self, column) -> ColumnElement[bool]:
        """A SQL condition restricting ``column`` (a unit_id column) to this scope."""
        if self.all_units:
            return true()
        if not self.unit_ids:
            return false()
        return column.in_(self.unit_ids)
