"""Fan-out's AWS adapters: the deliveries table, the job queues, the VAPID key parameter."""
