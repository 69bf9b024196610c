"""Herald's HTTP API: one Lambda behind API Gateway (REST), Powertools' resolver with validation."""
