"""Members: joining, preferences and leaving (rules, tokens, push endpoint policy, the service, ports)."""
