"""adapters/feeds."""
