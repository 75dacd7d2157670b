"""Latent diffusion maths: noise schedule, samplers, scene-level noise field and training loss."""

from hyperldm_engine.diffusion.samplers import DDIMSampler, DDPMSampler, StepOutput, make_sampler
from hyperldm_engine.diffusion.schedule import NoiseSchedule

__all__ = ["DDIMSampler", "DDPMSampler", "NoiseSchedule", "StepOutput", "make_sampler"]
