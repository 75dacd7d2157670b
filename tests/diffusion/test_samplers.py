"""DDPM / DDIM samplers: determinism, oracle recovery, equivalences with independent formulas."""

import itertools
import warnings

import pytest
import torch

from hyperldm_engine.diffusion.samplers import DEFAULT_STEPS, DDIMSampler, DDPMSampler, StepOutput, make_sampler
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.errors import InputError

SHAPE = (2, 4, 8, 8)


def _noise_fn(seed, dtype=torch.float64):
    def fn(i):
        return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed * 1000 + i), dtype=dtype)
    return fn


def _oracle(schedule, x0):
    """eps that is exactly consistent with x_t and the known clean latent x0."""
    return lambda x_t, t: schedule.predict_eps(x_t, x0, t)


def _clean_and_noise(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(SHAPE, generator=g, dtype=torch.float64).tanh(),
            torch.randn(SHAPE, generator=g, dtype=torch.float64))


def test_timesteps():
    s = NoiseSchedule.linear()
    assert DDPMSampler(s).timesteps == list(range(99, -1, -1))
    assert DDIMSampler(s, 10).timesteps == [99, 88, 77, 66, 55, 44, 33, 22, 11, 0]
    assert DDIMSampler(s, 1).timesteps == [99]
    for n in (2, 7, 20, 100):
        ts = DDIMSampler(s, n).timesteps
        assert len(ts) == n and ts[0] == 99 and ts[-1] == 0 and all(isinstance(t, int) for t in ts)
        assert all(a > b for a, b in itertools.pairwise(ts))


@pytest.mark.parametrize("sampler", [DDPMSampler(NoiseSchedule.linear()),
                                     DDIMSampler(NoiseSchedule.linear(), 10, eta=0.5)])
def test_same_noise_fn_gives_identical_samples(sampler):
    _x0, xT = _clean_and_noise()
    eps_fn = lambda x, t: 0.3 * x  # noqa: E731  (any fixed model)
    a = sampler.sample(eps_fn, xT, _noise_fn(1))
    b = sampler.sample(eps_fn, xT.clone(), _noise_fn(1))
    c = sampler.sample(eps_fn, xT, _noise_fn(2))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_ddim_eta0_is_deterministic_and_never_asks_for_noise():
    s = NoiseSchedule.linear()
    sampler = DDIMSampler(s, 15, eta=0.0)
    _, xT = _clean_and_noise()
    assert not any(sampler.needs_noise(t) for t in sampler.timesteps)
    a = sampler.sample(lambda x, t: 0.3 * x, xT, noise_fn=None)
    b = sampler.sample(lambda x, t: 0.3 * x, xT, noise_fn=_noise_fn(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("make", [lambda s: DDPMSampler(s), lambda s: DDIMSampler(s, 10),
                                  lambda s: DDIMSampler(s, 20, eta=1.0)])
def test_perfect_oracle_recovers_x0(make):
    s = NoiseSchedule.linear()
    x0, xT = _clean_and_noise(5)
    out = make(s).sample(_oracle(s, x0), xT, _noise_fn(4))
    assert (out - x0).abs().max() < 1e-9


def test_ddpm_step_equals_algorithm_2():
    # Algorithm 2: x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps) / sqrt(alpha_t) + sigma_t z.
    s = NoiseSchedule.linear()
    sampler = DDPMSampler(s)
    g = torch.Generator().manual_seed(7)
    x, eps, z = (torch.randn(SHAPE, generator=g, dtype=torch.float64) for _ in range(3))
    for t in (99, 50, 1, 0):
        b, a, ab = (float(v[t]) for v in (s.betas, s.alphas, s.alpha_bar))
        sigma = float(s.posterior_variance[t]) ** 0.5
        expected = (x - b / (1 - ab) ** 0.5 * eps) / a ** 0.5 + sigma * z
        out = sampler.step(eps, t, x, z)
        assert isinstance(out, StepOutput)
        assert torch.allclose(out.prev_sample, expected, atol=1e-12)
        assert torch.allclose(out.pred_original_sample, s.predict_x0(x, eps, t), atol=1e-12)


def test_ddim_with_all_steps_and_eta1_equals_ddpm():
    s = NoiseSchedule.linear()
    _, xT = _clean_and_noise(2)
    eps_fn = lambda x, t: torch.sin(x) * (t + 1) / 100  # noqa: E731
    a = DDPMSampler(s).sample(eps_fn, xT, _noise_fn(9))
    b = DDIMSampler(s, 100, eta=1.0).sample(eps_fn, xT, _noise_fn(9))
    assert torch.allclose(a, b, atol=1e-10)


def test_clip_x0_limits_prediction_and_callback_progress():
    s = NoiseSchedule.linear()
    sampler = DDIMSampler(s, 5, clip_x0=(-1.0, 1.0))
    _, xT = _clean_and_noise()
    seen = []

    class Count:
        n = 0

        def advance(self, n=1.0, message=None):
            self.n += n

    prog = Count()
    sampler.sample(lambda x, t: -3 * x, xT, None,
                   callback=lambda i, t, out: seen.append((i, t, out.pred_original_sample.abs().max())),
                   progress=prog)
    assert [t for _, t, _ in seen] == sampler.timesteps and prog.n == 5
    assert all(m <= 1.0 for _, _, m in seen)
    unclipped = DDIMSampler(s, 5)
    out = unclipped.step(-3 * xT, 99, xT)
    assert out.pred_original_sample.abs().max() > 10


def test_float32_and_missing_noise():
    s = NoiseSchedule.linear()
    x = torch.randn(SHAPE)
    out = DDPMSampler(s).step(torch.zeros_like(x), 50, x, torch.zeros_like(x))
    assert out.prev_sample.dtype == torch.float32
    with pytest.raises(ValueError):
        DDPMSampler(s).step(torch.zeros_like(x), 50, x, None)
    DDPMSampler(s).step(torch.zeros_like(x), 0, x, None)  # last step adds no noise


def test_make_sampler():
    s = NoiseSchedule.linear()
    assert isinstance(make_sampler("ddim", s), DDIMSampler)
    assert make_sampler("ddim", s).num_inference_steps == DEFAULT_STEPS == 4
    assert make_sampler("DDIM", s, 12, eta=0.3).eta == 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_sampler("ddpm", s, 100).num_inference_steps == 100
    with pytest.warns(UserWarning):
        assert make_sampler("ddpm", s, 10).num_inference_steps == 100
    with pytest.raises(InputError):
        make_sampler("euler", s)
    with pytest.raises(InputError):
        make_sampler("ddim", s, 0)
    with pytest.raises(InputError):
        make_sampler("ddim", s, 101)


@pytest.mark.parametrize("make", [lambda s: DDPMSampler(s), lambda s: DDIMSampler(s, 10, eta=0.5)])
def test_loop_never_reads_tensor_values(make):
    # Meta tensors have no data: any host read (item(), bool(), float()) in the loop would raise,
    # so this stands in for "no device-to-host synchronisation" on a GPU.
    s = NoiseSchedule.linear()
    xT = torch.empty(SHAPE, device="meta")
    out = make(s).sample(lambda x, t: 0.5 * x, xT, lambda i: torch.empty(SHAPE, device="meta"))
    assert out.device.type == "meta" and out.shape == SHAPE


def test_float32_oracle_recovery():
    s = NoiseSchedule.linear()
    x0, xT = (v.float() for v in _clean_and_noise(3))
    for sampler in (DDPMSampler(s), DDIMSampler(s, 20)):
        out = sampler.sample(_oracle(s, x0), xT, _noise_fn(1, dtype=torch.float32))
        assert out.dtype == torch.float32
        assert (out - x0).abs().max() < 1e-4


def test_schedule_pickles_without_device_cache():
    import pickle

    s = NoiseSchedule.linear(noise_scale=0.5)
    s.add_noise(torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([1, 2]))  # fills the cache
    r = pickle.loads(pickle.dumps(s))
    assert r == s and r.to_dict() == s.to_dict() and r._device_cache == {}
