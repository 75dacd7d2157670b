"""The scene-level noise field: standard normal noise indexed by scene coordinates, never materialised.

HyperLDM's sampler draws x_T and one noise tensor per reverse step. To make a large scene seamless and
reproducible, that noise is a function of (seed, sample, step, channel, latent row, latent column):
two overlapping tiles see the same noise in their overlap, and the same seed gives the same scene
whatever the tiling, batch composition, worker count or device.

Counter-based construction: the latent plane is cut into ``block x block`` squares. The values of
block (step, block_row, block_col), all channels, come from its own Philox generator whose 128-bit key
is hashed (numpy ``SeedSequence``) from (seed, sample, step, block_row, block_col, channels, block).
A window is assembled from the blocks it touches, so values depend only on absolute coordinates.
Values are float32 draws (numpy's ziggurat), computed on the CPU so they do not depend on the device;
a window for a GPU is copied there once per step from pinned memory, asynchronously.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from hyperldm_engine.errors import InputError

INITIAL_STEP = -1
"""Step index of the initial latent x_T; reverse steps use the sampler's loop index 0, 1, 2, ..."""

_DOMAIN_TAG = 0x48_4C_44_4D  # "HLDM": separates these keys from any other use of SeedSequence
_MASK64 = (1 << 64) - 1


def _zigzag64(value: int, name: str) -> int:
    """Map a signed integer to a non-negative one (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...), 64-bit."""
    v = int(value)
    z = (v << 1) if v >= 0 else ((-v << 1) - 1)
    if z > _MASK64:
        raise InputError(f"noise field: {name} {value} does not fit in 63 bits")
    return z


def _words(*values: int) -> np.ndarray:
    """Fixed-width encoding (two uint32 words per value) so distinct tuples never alias."""
    out = np.empty(2 * len(values), dtype=np.uint32)
    for i, v in enumerate(values):
        out[2 * i] = v & 0xFFFFFFFF
        out[2 * i + 1] = v >> 32
    return out


@dataclass(frozen=True)
class NoiseField:
    """Deterministic N(0, 1) noise for one generated sample of a scene, over (step, channel, row, col).

    ``seed`` is the user's seed, ``sample`` the index of the sample drawn from one RGB (K samples use
    0..K-1), ``channels`` the latent channels n_x, ``block`` the side of a generation block in latent
    pixels (part of the field's definition: changing it changes the noise). Picklable for dask tasks.
    """

    seed: int
    sample: int
    channels: int
    block: int = 32

    def __post_init__(self) -> None:
        if int(self.channels) != self.channels or self.channels < 1:
            raise InputError(f"noise field: channels must be a positive integer, got {self.channels}")
        if int(self.block) != self.block or self.block < 1:
            raise InputError(f"noise field: block must be a positive integer, got {self.block}")
        # Validate now so that a bad seed fails once, with a clear message.
        _zigzag64(self.seed, "seed")
        _zigzag64(self.sample, "sample")

    def block_key(self, step: int, block_row: int, block_col: int) -> np.ndarray:
        """The 128-bit Philox key (2 x uint64) of one block: a hash of all its indices."""
        entropy = _words(_DOMAIN_TAG, _zigzag64(self.seed, "seed"), _zigzag64(self.sample, "sample"),
                         _zigzag64(step, "step"), _zigzag64(block_row, "block row"),
                         _zigzag64(block_col, "block column"), int(self.channels), int(self.block))
        return np.random.SeedSequence(entropy).generate_state(2, np.uint64)

    def block_values(self, step: int, block_row: int, block_col: int) -> np.ndarray:
        """All channels of one block, ``(channels, block, block)`` float32."""
        gen = np.random.Generator(np.random.Philox(key=self.block_key(step, block_row, block_col)))
        return gen.standard_normal((self.channels, self.block, self.block), dtype=np.float32)

    def window_numpy(self, step: int, row0: int, col0: int, rows: int, cols: int,
                     out: np.ndarray | None = None,
                     cache: dict[tuple[int, int, int], np.ndarray] | None = None) -> np.ndarray:
        """The field on latent rows ``row0 .. row0+rows-1`` and columns ``col0 .. col0+cols-1`` at
        ``step`` as ``(channels, rows, cols)`` float32. ``cache`` (a dict) shares blocks between
        overlapping windows of one step; ``out`` receives the values if given."""
        if rows < 1 or cols < 1:
            raise InputError(f"noise field: window size must be positive, got {rows} x {cols}")
        b = self.block
        if out is None:
            out = np.empty((self.channels, rows, cols), dtype=np.float32)
        elif out.shape != (self.channels, rows, cols):
            raise ValueError(f"out has shape {out.shape}, expected {(self.channels, rows, cols)}")
        for br in range(row0 // b, (row0 + rows - 1) // b + 1):
            r_lo, r_hi = max(row0, br * b), min(row0 + rows, (br + 1) * b)
            for bc in range(col0 // b, (col0 + cols - 1) // b + 1):
                c_lo, c_hi = max(col0, bc * b), min(col0 + cols, (bc + 1) * b)
                key = (int(step), br, bc)
                values = cache.get(key) if cache is not None else None
                if values is None:
                    values = self.block_values(step, br, bc)
                    if cache is not None:
                        cache[key] = values
                out[:, r_lo - row0:r_hi - row0, c_lo - col0:c_hi - col0] = \
                    values[:, r_lo - br * b:r_hi - br * b, c_lo - bc * b:c_hi - bc * b]
        return out

    def window(self, step: int, row0: int, col0: int, rows: int, cols: int,
               device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """:meth:`window_numpy` as a torch tensor ``(channels, rows, cols)`` on ``device``."""
        return _to_device(self.window_numpy(step, row0, col0, rows, cols), device, dtype)


def _to_device(array: np.ndarray, device: torch.device | str | None, dtype: torch.dtype) -> torch.Tensor:
    """CPU array -> tensor on ``device``; for CUDA via pinned memory and a non-blocking copy."""
    tensor = torch.from_numpy(array)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        return tensor.pin_memory().to(dev, non_blocking=True).to(dtype)
    return tensor.to(device=dev, dtype=dtype)


_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hyperldm-noise")
        return _EXECUTOR


class WindowNoise:
    """A sampler ``noise_fn``: ``noise(step_index) -> (B, channels, rows, cols)`` for a batch of windows.

    Batch element ``i`` is ``fields[i]`` at latent origin ``origins[i]``; e.g. a batch of tiles of one
    sample (one field, many origins) or K samples of one tile (K fields, one origin repeated).
    ``noise(INITIAL_STEP)`` is x_T. With ``prefetch`` the next step's noise is generated on a worker
    thread while the model runs (numpy releases the GIL while drawing).
    """

    def __init__(self, fields: NoiseField | Sequence[NoiseField], origins: Sequence[tuple[int, int]],
                 rows: int, cols: int, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32, prefetch: bool = False) -> None:
        origins = [(int(r), int(c)) for r, c in origins]
        if not origins:
            raise InputError("noise field: at least one window origin is needed")
        if isinstance(fields, NoiseField):
            fields = [fields] * len(origins)
        fields = list(fields)
        if len(fields) != len(origins):
            raise InputError(f"noise field: {len(fields)} fields for {len(origins)} windows")
        if len({f.channels for f in fields}) != 1:
            raise InputError("noise field: all fields of a batch must have the same channel count")
        self.fields, self.origins = fields, origins
        self.rows, self.cols = int(rows), int(cols)
        self.device, self.dtype, self.prefetch = device, dtype, prefetch
        self.shape = (len(origins), fields[0].channels, self.rows, self.cols)
        self._pending: tuple[int, Future[np.ndarray]] | None = None

    def numpy(self, step: int) -> np.ndarray:
        """The batch at ``step`` as a float32 array; blocks shared by overlapping windows drawn once."""
        out = np.empty(self.shape, dtype=np.float32)
        caches: dict[NoiseField, dict[tuple[int, int, int], np.ndarray]] = {}
        for i, (field, (r, c)) in enumerate(zip(self.fields, self.origins, strict=True)):
            field.window_numpy(step, r, c, self.rows, self.cols, out=out[i],
                               cache=caches.setdefault(field, {}))
        return out

    def __call__(self, step: int) -> torch.Tensor:
        step = int(step)
        array = None
        if self._pending is not None:
            pending_step, future = self._pending
            self._pending = None
            if pending_step == step:
                array = future.result()
            else:
                future.cancel()
        if array is None:
            array = self.numpy(step)
        if self.prefetch:
            nxt = 0 if step == INITIAL_STEP else step + 1
            self._pending = (nxt, _executor().submit(self.numpy, nxt))
        return _to_device(array, self.device, self.dtype)


def noise_fn_for_window(field: NoiseField, row0: int, col0: int, rows: int, cols: int,
                        device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                        prefetch: bool = False) -> WindowNoise:
    """``noise_fn`` for one window: ``noise_fn(step) -> (1, channels, rows, cols)``; step -1 is x_T."""
    return WindowNoise(field, [(row0, col0)], rows, cols, device=device, dtype=dtype, prefetch=prefetch)


def noise_fn_for_windows(fields: NoiseField | Sequence[NoiseField], origins: Sequence[tuple[int, int]],
                         rows: int, cols: int, device: torch.device | str | None = None,
                         dtype: torch.dtype = torch.float32, prefetch: bool = False) -> WindowNoise:
    """``noise_fn`` for a batch of equally sized windows (tiles), stacked on the batch axis."""
    return WindowNoise(fields, origins, rows, cols, device=device, dtype=dtype, prefetch=prefetch)
