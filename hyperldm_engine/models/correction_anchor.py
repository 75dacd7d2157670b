"""How a bundle stores the anchor of ``--rgb-correction anchored`` (``spectral.fusion``), of either kind.

``config.json``'s ``consistency.<key>`` record says the kind and its shape: ``{"kind": "ridge", "degree": 2}``
(bundles written before the CNN anchor have no ``kind``: a ridge), ``{"kind": "cnn", "width": 24,
"blocks": 3}`` or both at once, ``{"kind": "ridge+cnn", "degree": 2, "width": 24, "blocks": 3}``. The
tensors are ``consistency.<key>.gain`` (n_bands, n_bands; n_bands, 2 n_bands for the joint kind) and
``.covariance``, plus ``.weights`` (n_features, n_bands) for a ridge and the network's state dict under
``.net.`` for a CNN. Pure functions:
the bundle loader checks every record and shape with them before it builds anything.
"""

from __future__ import annotations

from typing import Any

import torch

from hyperldm_engine.models.residual_cnn import ResidualCNN
from hyperldm_engine.spectral.fusion import CorrectionAnchor, JointAnchor, NetworkAnchor, RegressionAnchor, n_features

#: the anchor kinds a bundle may carry
ANCHOR_KINDS = ("ridge", "cnn", "ridge+cnn")
#: the widest and deepest anchor network a bundle may ask for (a guard against absurd configs, far above use)
MAX_WIDTH, MAX_BLOCKS = 512, 32


def anchor_kind(record: dict[str, Any]) -> str:
    """The kind a ``consistency.<key>`` record names ("ridge" when it names none: the older bundles)."""
    return str(record.get("kind", "ridge"))


def record_problem(record: Any) -> str | None:
    """What is wrong with a ``consistency.<key>`` record, in words, or None when it is usable."""
    if not isinstance(record, dict):
        return "is not a JSON object"
    kind = anchor_kind(record)
    if kind not in ANCHOR_KINDS:
        return f"has kind {kind!r}; this engine reads {' or '.join(ANCHOR_KINDS)}"
    if kind != "cnn" and record.get("degree") not in (1, 2):
        return f"is a {kind} without degree 1 or 2"
    if kind == "ridge":
        return None
    ok = all(isinstance(record.get(k), int) and not isinstance(record.get(k), bool) for k in ("width", "blocks"))
    if not ok or not (1 <= record["width"] <= MAX_WIDTH and 0 <= record["blocks"] <= MAX_BLOCKS):
        return f"is a cnn without an integer width in 1-{MAX_WIDTH} and blocks in 0-{MAX_BLOCKS}"
    return None


def anchor_record(anchor: Any) -> dict[str, Any]:
    """The kind and shape of ``anchor`` for its ``consistency.<key>`` record."""
    out: dict[str, Any] = {"kind": anchor.kind}
    if not isinstance(anchor, NetworkAnchor):
        out["degree"] = int(anchor.degree)
    if not isinstance(anchor, RegressionAnchor):
        out.update(width=int(anchor.net.width), blocks=int(anchor.net.n_blocks))
    return out


def anchor_tensors(anchor: Any) -> dict[str, torch.Tensor]:
    """The tensors of ``anchor``, named relative to ``consistency.<key>.``, float32 on the CPU."""
    out = {"gain": anchor.gain, "covariance": anchor.covariance}
    if not isinstance(anchor, RegressionAnchor):
        out.update({f"net.{k}": v for k, v in anchor.net.state_dict().items()})
    if not isinstance(anchor, NetworkAnchor):
        out["weights"] = anchor.weights
    return {k: torch.as_tensor(v).detach().to("cpu", torch.float32) for k, v in out.items()}


def _network(record: dict[str, Any], n_bands: int) -> ResidualCNN:
    return ResidualCNN(n_bands, int(record["width"]), int(record["blocks"]))


def expected_shapes(record: dict[str, Any], n_bands: int) -> dict[str, tuple[int, ...]]:
    """The tensor shapes a valid ``record`` (:func:`record_problem` None) implies, relative names."""
    kind = anchor_kind(record)
    out: dict[str, tuple[int, ...]] = {"gain": (n_bands, 2 * n_bands if kind == "ridge+cnn" else n_bands),
                                       "covariance": (n_bands, n_bands)}
    if kind != "ridge":
        out.update({f"net.{k}": tuple(v.shape) for k, v in _network(record, n_bands).state_dict().items()})
    if kind != "cnn":
        out["weights"] = (n_features(int(record["degree"])), n_bands)
    return out


def anchor_from_tensors(record: dict[str, Any], tensors: dict[str, torch.Tensor], n_bands: int,
                        device: str | torch.device = "cpu") -> CorrectionAnchor:
    """The anchor a valid ``record`` and its checked tensors (relative names, :func:`expected_shapes`) describe."""
    array = lambda name: tensors[name].double().numpy().copy()  # noqa: E731
    kind = anchor_kind(record)
    fusion = {"gain": array("gain"), "covariance": array("covariance")}
    if kind == "ridge":
        return RegressionAnchor(weights=array("weights"), degree=int(record["degree"]), **fusion)
    net = _network(record, n_bands)
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
    net = net.to(device, memory_format=torch.channels_last)  # spectral.fusion.network_cube: the fast layout
    net = net.eval().requires_grad_(False)
    if kind == "cnn":
        return NetworkAnchor(net=net, **fusion)
    return JointAnchor(weights=array("weights"), degree=int(record["degree"]), net=net, **fusion)
