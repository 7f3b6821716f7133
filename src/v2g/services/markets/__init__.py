"""Market operations: bidding groups, bids, clearing and pre-qualification results (ports beside them)."""
