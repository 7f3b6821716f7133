"""Real-time dispatch: the central dispatcher, local mode, and the one frequency loop that drives them."""
