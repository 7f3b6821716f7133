"""Planning inputs and use cases around the fleet planner."""
