"""adapters/openadr."""
