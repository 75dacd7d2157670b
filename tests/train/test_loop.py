"""Training loop: loss falls, exact resume after interruption, signals write a checkpoint."""

import os
import signal

import numpy as np
import pytest
import torch

from hyperldm_engine.errors import Interrupted
from hyperldm_engine.train.checkpoint import latest_checkpoint, list_checkpoints
from hyperldm_engine.train.data import scene_normaliser
from hyperldm_engine.train.loop import StopRequest, Trainer, fingerprint

from .tiny import tiny_config, tiny_library, tiny_scene, tiny_settings


def make_trainer(**kw):
    settings = tiny_settings(**kw)
    trainer = Trainer([tiny_scene()], tiny_config(), tiny_library(), settings, scene_normaliser, n_classes=3)
    return trainer, fingerprint(settings, tiny_config(), {"data": "tiny"})


def test_stage1_loss_falls_within_seconds():
    torch.set_num_threads(1)
    n = 60
    trainer, _ = make_trainer(vq_iterations=n, diffusion_iterations=0, classifier_iterations=0,
                              adv_weight=0.0, batch_size=4, lr_vq=3e-3, augment=False)
    losses = [trainer.step()["loss"] for _ in range(n)]
    assert np.mean(losses[-8:]) < 0.75 * np.mean(losses[:5])


def test_classifier_learns_tiny_classes():
    trainer, _ = make_trainer(vq_iterations=0, diffusion_iterations=0, classifier_iterations=100,
                              lr_classifier=1e-2, classifier_batch=64)
    trainer.state.scale = 1.0
    accs = [trainer.step()["acc"] for _ in range(100)]
    assert np.mean(accs[-5:]) > 0.8


def test_resume_after_interruptions_reaches_bit_identical_weights(tmp_path):
    ref, fp = make_trainer()
    ref.run(None, fp)
    total = ref.settings.total
    # stop inside stage 1 (after a discriminator step), inside stage 2 and inside the classifier stage
    for stop in (5, 8, 11):
        trainer, _ = make_trainer()
        trainer.resume(tmp_path, fp)
        with pytest.raises(Interrupted) as err:
            trainer.run(tmp_path, fp, stop_after=stop)
        assert err.value.exit_code == 130
        assert latest_checkpoint(tmp_path)["iteration"] == stop
    trainer, _ = make_trainer()
    assert trainer.resume(tmp_path, fp)
    trainer.run(tmp_path, fp)
    assert trainer.state.iteration == total and trainer.state.scale == ref.state.scale
    assert trainer.state.history == ref.state.history
    for name, sd in ref.weights.items():
        got = trainer.weights[name]
        for k, v in sd.items():
            assert torch.equal(v, got[k]), f"{name}.{k} differs after resume"


def test_checkpoint_from_other_settings_is_refused(tmp_path):
    trainer, fp = make_trainer()
    with pytest.raises(Interrupted):
        trainer.run(tmp_path, fp, stop_after=2)
    other, fp2 = make_trainer(seed=9)
    with pytest.raises(Exception, match="--restart"):
        other.resume(tmp_path, fp2)


class _SignalAt:
    """A progress stand-in that sends this process a signal after ``n`` iterations."""

    def __init__(self, n, signum):
        self.n, self.signum, self.done = n, signum, 0

    def advance(self, k=1, message=None, **_):
        self.done += k
        if self.done == self.n:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_cleanly_with_a_checkpoint(tmp_path, signum, code):
    trainer, fp = make_trainer()
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop, pytest.raises(Interrupted) as err:
        trainer.run(tmp_path, fp, progress=_SignalAt(3, signum), stop=stop)
    assert err.value.exit_code == code
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-000000003.safetensors"]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored
