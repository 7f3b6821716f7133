"""Pre-qualification: the test sequences run on a group through the charger gateway."""
