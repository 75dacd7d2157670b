"""Reproductions of the paper's experiments on simulated scenes (noise sweep, downstream classification).

Each experiment writes ``results.json``, ``results.md`` and figures into one folder, atomically.
See reports/README.md for how to regenerate the published numbers.
"""
