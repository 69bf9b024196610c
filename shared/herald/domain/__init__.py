"""Herald's domain: upload layout, parsing, validation and the ingest rules."""
