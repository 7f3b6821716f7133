"""Settlement use cases: capture metering, run a period exactly once, close it (ports beside them)."""
