"""Fleet reference data as the services read it."""
