"""``make bench``: how fast Tramita is, measured against the limits of Temporal itself.

One run starts an embedded dev server, a worker and the API as separate processes,
measures the six figures of ``docs/benchmarks.md`` and writes ``bench/results.json``.
Nothing here runs in ``make test``.
"""
