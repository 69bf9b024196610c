"""Members' AWS adapters: the members table, the token secret, SNS device endpoints."""
