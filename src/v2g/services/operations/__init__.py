"""Running the operating day: the job scheduler and the operator's view of the fleet."""
