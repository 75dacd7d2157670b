"""The HyperLDM Processing algorithms (thin: parameters in, engine subprocess, layers out)."""
