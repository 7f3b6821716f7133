"""prequal."""
