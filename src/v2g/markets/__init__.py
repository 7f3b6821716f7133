"""markets."""
