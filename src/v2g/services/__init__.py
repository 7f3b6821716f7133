"""Use cases that combine the pure cores with ports (repositories, charger gateway, clock)."""
