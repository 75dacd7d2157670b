"""Paper Table VI: land-cover segmentation from RGB, synthetic HSI (x1, x5) and the reference HSI.

The same small fully-convolutional network (3 x 3 convolutions, only the input channels differ) is
trained on simulated training scenes with the simulator's labels and evaluated (OA, AA, Cohen's
kappa, confusion matrix) on held-out simulated scenes. Inputs:

- ``rgb``: the camera RGB (train and test);
- ``synthetic_x1``: one synthetic HSI per training RGB; test on a synthetic HSI of the test RGB
  (what a user would have);
- ``synthetic_x5``: five synthetic HSIs per training RGB used as augmentation (each crop draws one
  of them); tested like x1;
- ``reference_hsi``: the simulated (true) cube for training and test.

Every input is standardised per channel with the training set's mean and std. The network is
initialised and trained with the same seed for every input, inside ``torch.random.fork_rng``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.experiments.common import simulated_scenes, synthesize_in_memory
from hyperldm_engine.pipeline.synthesize import SamplingOptions

VARIANTS = ("rgb", "synthetic_x1", "synthetic_x5", "reference_hsi")
PAPER_OA = {"rgb": 0.737, "synthetic_x1": 0.787, "synthetic_x5": 0.838, "reference_hsi": 0.834}


@dataclass(frozen=True)
class DownstreamSettings:
    """Sizes and budgets; defaults run in a few minutes on 2 CPU cores with the small model."""

    train_scenes: int = 3
    test_scenes: int = 2
    size: int = 128
    iterations: int = 300
    batch_size: int = 8
    crop: int = 48
    width: int = 32
    lr: float = 3e-3
    steps: int = 10
    augment_samples: int = 5
    seed: int = 0
    device: str = "cpu"

    @classmethod
    def quick(cls) -> DownstreamSettings:
        return cls(train_scenes=1, test_scenes=1, size=32, iterations=5, batch_size=2, crop=16, width=8,
                   steps=2, augment_samples=2)


def segmentation_net(in_channels: int, n_classes: int, width: int = 32) -> Any:
    """Four 3 x 3 conv layers with ReLU and a 1 x 1 classifier (receptive field 9 px)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, n_classes, 1),
    )


def classification_scores(confusion: np.ndarray) -> dict[str, float]:
    """OA, AA (mean recall over classes present in the reference) and Cohen's kappa of a confusion matrix.

    ``confusion[i, j]`` = pixels of true class i predicted as j.
    """
    c = np.asarray(confusion, dtype=np.float64)
    n = c.sum()
    if n == 0:
        return {"oa": float("nan"), "aa": float("nan"), "kappa": float("nan")}
    oa = float(np.trace(c) / n)
    rows = c.sum(axis=1)
    present = rows > 0
    aa = float(np.mean(np.diag(c)[present] / rows[present]))
    pe = float((rows * c.sum(axis=0)).sum() / n**2)
    kappa = float((oa - pe) / (1 - pe)) if pe < 1 else 1.0
    return {"oa": oa, "aa": aa, "kappa": kappa}


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    idx = truth.ravel().astype(np.int64) * n_classes + pred.ravel().astype(np.int64)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def train_and_test(train_inputs: list[list[np.ndarray]], train_labels: list[np.ndarray],
                   test_inputs: list[np.ndarray], test_labels: list[np.ndarray], n_classes: int,
                   settings: DownstreamSettings) -> dict[str, Any]:
    """Train the network on crops of ``train_inputs`` (per scene, a list of alternative inputs) and test it.

    Returns scores, the confusion matrix and the final training loss.
    """
    import torch
    import torch.nn.functional as F

    stack = np.concatenate([a.reshape(a.shape[0], -1) for alts in train_inputs for a in alts], axis=1)
    mean = stack.mean(axis=1)[:, None, None].astype(np.float32)
    std = (stack.std(axis=1)[:, None, None] + 1e-6).astype(np.float32)
    device = torch.device(settings.device)
    rng = np.random.default_rng(settings.seed)
    c = train_inputs[0][0].shape[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        net = segmentation_net(c, n_classes, settings.width).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(settings.iterations, 1))
        loss_v = float("nan")
        for _ in range(settings.iterations):
            xs, ys = [], []
            for _ in range(settings.batch_size):
                i = int(rng.integers(len(train_inputs)))
                alt = train_inputs[i][int(rng.integers(len(train_inputs[i])))]
                h, w = alt.shape[-2:]
                cr = min(settings.crop, h, w)
                r, q = int(rng.integers(h - cr + 1)), int(rng.integers(w - cr + 1))
                k = int(rng.integers(4))
                xs.append(np.rot90((alt[:, r:r + cr, q:q + cr] - mean) / std, k, axes=(1, 2)))
                ys.append(np.rot90(train_labels[i][r:r + cr, q:q + cr], k))
            x = torch.from_numpy(np.ascontiguousarray(np.stack(xs), dtype=np.float32)).to(device)
            y = torch.from_numpy(np.ascontiguousarray(np.stack(ys), dtype=np.int64)).to(device)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_v = float(loss.detach())
    net.eval()
    conf = np.zeros((n_classes, n_classes), np.int64)
    with torch.inference_mode():
        for x, y in zip(test_inputs, test_labels, strict=True):
            t = torch.from_numpy(((x - mean) / std).astype(np.float32))[None].to(device)
            pred = net(t).argmax(dim=1)[0].cpu().numpy()
            conf += confusion_matrix(y, pred, n_classes)
    return {**classification_scores(conf), "confusion": conf, "final_loss": loss_v}


def run_downstream(bundle_path: str, out_dir: str | Path, settings: DownstreamSettings,
                   overwrite: bool = False, progress_mode: str = "bar") -> dict[str, Any]:
    """Run the four trainings and write results.json, results.md and confusion_<variant>.png (atomically)."""
    from hyperldm_engine.errors import OutputError
    from hyperldm_engine.experiments.report import confusion_figure, downstream_markdown
    from hyperldm_engine.io.atomic import atomic_dir
    from hyperldm_engine.pipeline.report import jsonable
    from hyperldm_engine.progress import Progress

    out_dir = Path(out_dir)
    if (out_dir.exists() or out_dir.is_symlink()) and not overwrite:
        raise OutputError(f"{out_dir}: the output folder already exists; use --overwrite to replace it")
    t0 = time.perf_counter()
    train = simulated_scenes(settings.train_scenes, settings.size, held_out=False)
    test = simulated_scenes(settings.test_scenes, settings.size, held_out=True)
    names = train[0].class_names
    n_classes = len(names)
    k = max(2, settings.augment_samples)
    opts = SamplingOptions(samples=k, seed=settings.seed, steps=settings.steps)
    with Progress(len(train) + len(test) + len(VARIANTS), "downstream", mode=progress_mode) as progress:
        t_syn = time.perf_counter()
        syn_train = []
        for s in train:
            syn_train.append(list(synthesize_in_memory(bundle_path, s.rgb, opts, settings.device)))
            progress.advance(1, message="synthesize training scenes")
        test_opts = SamplingOptions(samples=1, seed=settings.seed + 1, steps=settings.steps)
        syn_test = []
        for s in test:
            syn_test.append(synthesize_in_memory(bundle_path, s.rgb, test_opts, settings.device)[0])
            progress.advance(1, message="synthesize test scenes")
        synth_s = time.perf_counter() - t_syn
        inputs = {
            "rgb": ([[s.rgb] for s in train], [s.rgb for s in test]),
            "synthetic_x1": ([[c[0]] for c in syn_train], syn_test),
            "synthetic_x5": ([c[:settings.augment_samples] for c in syn_train], syn_test),
            "reference_hsi": ([[s.hsi] for s in train], [s.hsi for s in test]),
        }
        rows = []
        for name in VARIANTS:
            tr, te = inputs[name]
            t1 = time.perf_counter()
            res = train_and_test(tr, [s.labels for s in train], te, [s.labels for s in test], n_classes, settings)
            rows.append({"input": name, "channels": int(tr[0][0].shape[0]), "train_inputs_per_rgb": len(tr[0]),
                         "paper_oa": PAPER_OA[name], "seconds": round(time.perf_counter() - t1, 2), **res})
            progress.advance(1, message=name)
    result = {"experiment": "downstream classification (paper Table VI)", "model": str(bundle_path),
              "settings": asdict(settings), "classes": names, "rows": rows,
              "train_scenes": [s.seed for s in train], "test_scenes": [s.seed for s in test],
              "synthesis_s": round(synth_s, 2), "seconds": round(time.perf_counter() - t0, 2)}
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for row in rows:
            confusion_figure(row["confusion"], names, f"{row['input']}: OA {row['oa']:.3f}",
                             tmp / f"confusion_{row['input']}.png")
        (tmp / "results.json").write_text(json.dumps(jsonable(result), indent=2) + "\n")
        (tmp / "results.md").write_text(downstream_markdown(result))
    return result
