"""Security incidents a unit records and reports to the authorities (A8's reporting half)."""
