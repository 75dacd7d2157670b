"""Metrics: similarity to a reference (``similarity``, ``streaming``) and SD / SDM (``diversity``).

See docs/metrics.md for definitions, data ranges and how to compare with the paper's numbers.
"""
