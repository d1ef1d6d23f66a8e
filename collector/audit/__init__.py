"""The audit log: every change people make, who, when, from where, before and after."""
