"""Attestations: evidence a unit submits for the attested indicators (M1–M3) and the reviews that rate it."""
