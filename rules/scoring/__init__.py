"""Scoring: the CS-ATTT model as data and the pure computations on it."""
