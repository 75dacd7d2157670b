"""Latent diffusion maths: noise schedule, samplers, scene-level noise field and training loss."""

from hyperldm_engine.diffusion.loss import diffusion_loss
from hyperldm_engine.diffusion.noise import (
    INITIAL_STEP,
    NoiseField,
    WindowNoise,
    noise_fn_for_window,
    noise_fn_for_windows,
)
from hyperldm_engine.diffusion.samplers import DDIMSampler, DDPMSampler, StepOutput, make_sampler
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.diffusion.ssim import ssim

__all__ = ["INITIAL_STEP", "DDIMSampler", "DDPMSampler", "NoiseField", "NoiseSchedule", "StepOutput",
           "WindowNoise", "diffusion_loss", "make_sampler", "noise_fn_for_window", "noise_fn_for_windows",
           "ssim"]
