"""Experiment (issue 20, item 4): a class-group prior on the abundances, by fine-tuning the decoder side only.

Fine-tunes the bundled VQGAN's condition encoder, decoder, abundance head and illumination with the
paper's reconstruction loss plus -log(abundance mass in the label's material group) on the bundle's
simulated training scenes (their land-cover labels), and, with a second weight, the same group loss
on another patch's latent decoded with this patch's RGB (so the group follows the RGB, not the
latent). Encoder, codebook, denoiser and classifier are frozen, so the latents, the latent scale and
the denoiser stay valid. Measured results: docs/model-diagnosis.md, "A class-group prior on A".

    .venv/bin/python scripts/decoder_group_prior.py OUT_BUNDLE ITERATIONS GROUP_WEIGHT [LR [SHUFFLED_WEIGHT]]
    .venv/bin/python scripts/decoder_group_prior.py /tmp/gft3 2500 5.0 2e-4 2.0
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hyperldm_engine.experiments.quality import QualitySettings, training_scenes
from hyperldm_engine.models.bundle import default_bundle_path, load_bundle, save_bundle
from hyperldm_engine.spectral.groups import GROUPS, group_matrix, label_groups
from hyperldm_engine.train.align import group_nll
from hyperldm_engine.train.data import PatchSampler, scene_normaliser
from hyperldm_engine.train.stage1 import Stage1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("iterations", type=int)
    ap.add_argument("group_weight", type=float)
    ap.add_argument("lr", type=float, nargs="?", default=1e-4)
    ap.add_argument("shuffled_weight", type=float, nargs="?", default=0.0)
    args = ap.parse_args()
    bundle = load_bundle(default_bundle_path())
    v = bundle.vqgan.train()
    scenes, _ = training_scenes(bundle, QualitySettings(), "none")
    names = scenes[0].class_names
    sampler = PatchSampler(scenes, 32, np.random.default_rng(123), scene_normaliser, 0.9, True)
    group_of_spectrum = torch.from_numpy(group_matrix(list(bundle.library_classes))).float()  # (groups, n_g)
    group_of_label = torch.from_numpy(label_groups(np.arange(len(names)), names))
    bright = GROUPS.index("bright")  # clouds: no library spectrum is a cloud
    for p in v.parameters():
        p.requires_grad_(False)
    trained = [v.decoder, v.abundance_head] + ([v.condition_encoder] if v.condition_encoder is not None else [])
    params = [p for m in trained for p in m.parameters()] + [v.illumination_param]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=args.lr)
    stage1 = Stage1(v, None, None, adv_weight=0.0)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for it in range(args.iterations):
        batch = sampler.sample(8)
        v.encoder.eval()
        loss, out, _, logs = stage1.generator_loss(batch, it, gen)
        want = group_of_label[batch.labels.clamp_min(0)]  # (B, p, p)
        ok = batch.valid & (batch.labels >= 0) & (want >= 0) & (want != bright)
        lg = group_nll(out.abundances, group_of_spectrum, want, ok)
        loss = loss + args.group_weight * lg
        logs["group"] = float(lg.detach())
        grouped = torch.einsum("gn,bnhw->bghw", group_of_spectrum, out.abundances.detach())
        logs["agree"] = float(((grouped.argmax(1) == want) & ok).sum() / ok.sum().clamp_min(1))
        if args.shuffled_weight > 0:  # the group must follow the RGB whatever the latent
            other = v.decode(out.z_q.detach().roll(1, 0), batch.rgb)
            l2 = group_nll(other.abundances, group_of_spectrum, want, ok)
            loss = loss + args.shuffled_weight * l2
            logs["group_shuffled"] = float(l2.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % 25 == 0 or it == args.iterations - 1:
            print(it, f"{time.perf_counter() - t0:.0f} s", {k: round(float(x), 4) for k, x in logs.items()}, flush=True)
    bundle.vqgan = v.eval()
    bundle.training = {**(bundle.training or {}), "decoder_group_prior": {
        "iterations": args.iterations, "group_weight": args.group_weight, "lr": args.lr,
        "shuffled_weight": args.shuffled_weight, "patch": 32, "batch": 8,
        "frozen": "encoder, codebook, denoiser, classifier"}}
    save_bundle(args.out, bundle, overwrite=True)
    print("saved", args.out, f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
