"""IEEE 2030.5 (CSIP / CSIP-AUS) client of the aggregator: DER controls in, DER status and readings out."""
