"""Metrics: one module per idea, each built around pure functions of arrays."""
