"""Console page routes, one module per area."""
