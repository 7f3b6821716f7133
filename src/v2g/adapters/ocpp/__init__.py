"""adapters/ocpp."""
