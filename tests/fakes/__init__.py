"""In-memory stand-ins of Herald's ports, for unit tests that touch no AWS and no socket."""
