"""Herald's benchmarks: ``make bench`` (``python -m herald_tools.bench``) writes docs/benchmarks.md.

Every number is paired with a baseline measured in the same run, on the same input, on the same
machine, and reported as a ratio:

- :mod:`.throughput`: ``parse_post`` + ``enrich`` per post against ``json.loads`` + pydantic
  validation, with the enrichment steps apart and the first call (model loading) apart;
- :mod:`.imports`: ``import app`` of the ingest function against ``import boto3, pydantic``, in
  fresh processes, and the first invocation against a warm one (:mod:`.coldstart`);
- :mod:`.aws_calls`: the AWS calls the ingest handler makes per post, on moto, against the least a
  correct design needs;
- :mod:`.site`, :mod:`.members`, :mod:`.fanout`: the site's renderer, joins through the API
  handler, the fan-out's calls per 1,000 members and pushes per second;
- :mod:`.worstcase`, :mod:`.hostile_push`, :mod:`.local_joins`, :mod:`.local_cloud`: enrichment on
  hostile text, the Web Push sender against hostile push services, concurrent joins through
  ``herald local``'s API, and the local cloud at a community's sizes (each writes a block of its own).

:mod:`.exports` (a 5,000-post export through the handler) is run on its own, not by ``make bench``.

The corpus (:mod:`.corpus`) is generated from a fixed seed, so every run measures the same work.
"""
