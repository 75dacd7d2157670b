#!/usr/bin/env python
"""Moved to ``hyperldm-engine experiment quality`` (same options); this shim forwards to it.

    .venv/bin/hyperldm-engine experiment quality --model hyperldm_engine/data/default_model
"""
import sys

from hyperldm_cli.main import main

if __name__ == "__main__":
    main(["experiment", "quality", *sys.argv[1:]])
