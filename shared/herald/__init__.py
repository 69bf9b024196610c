"""Herald: publishing backend for community channels, one package per feature.

``herald.ingest`` (uploads to stored posts), ``herald.enrichment`` (text to facts),
``herald.members`` (joining, preferences, leaving), ``herald.fanout`` (push to members),
``herald.site`` (the public pages and feeds) and ``herald.api`` (the HTTP API), over
``herald.content`` (the models several features read) and ``herald.core`` (errors, lazy holders,
AWS clients, observability). Each feature holds its rules, service, ports and ``adapters/``;
docs/architecture.md has the map.
"""

__version__ = "0.1.0"
