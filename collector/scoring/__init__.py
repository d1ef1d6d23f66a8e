"""Scoring: daily indicator values per unit, monthly frozen snapshots, scores (CS-ATTT)."""
