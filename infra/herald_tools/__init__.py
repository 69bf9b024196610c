"""Herald's operator tools: the ``herald`` command line, the local cloud, reports and benchmarks."""
