"""Planning use cases: the planning cycle of the operating day, grid signals, owner preferences."""
