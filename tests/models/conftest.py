"""Fixtures of the model tests; the helpers live in model_fixtures.py."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import tiny_config

from hyperldm_engine.models.config import ModelConfig


@pytest.fixture
def tiny() -> ModelConfig:
    return tiny_config()


@pytest.fixture
def library() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(8, 5, generator=g) * 0.8 + 0.1
