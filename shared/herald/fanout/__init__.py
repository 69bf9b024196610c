"""Push fan-out: the planner, the sender, push jobs with their leases and retries, and the push channels."""
