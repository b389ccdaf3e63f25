"""PokeWatch benchmarks: every pipeline stage at full-catalogue scale, beside the original loop.

Run ``.venv/bin/python -m benchmarks --help``; the results are written to
``docs/performance.md`` (with ``performance.json`` and ``performance.png``).
"""
