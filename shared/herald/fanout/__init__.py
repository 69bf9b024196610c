"""Push fan-out: the planner, the sender, delivery records and retries, and the push channels."""
