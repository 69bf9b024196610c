"""Ingest: an S3 upload becomes a stored post (layout, parsing, limits, the ingest service, its ports)."""
