"""The optimisation loop shared by the post-training stages (latent anchor, decoder alignment).

A run ends at ``iterations`` or, with ``budget_minutes``, at that wall time, whichever comes first;
the learning rate follows a cosine from the optimiser's rate to 0 over the fraction of the run done
(iterations or wall time, whichever is further along), so a budgeted run still anneals fully.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

#: a step: iteration -> (loss to minimise, floats to log)
Step = Callable[[int], tuple[torch.Tensor, dict[str, float]]]


def run_budgeted(opt: torch.optim.Optimizer, iterations: int, budget_minutes: float | None, step: Step,
                 progress: Any = None, log_every: int = 25) -> tuple[int, list[dict[str, float]]]:
    """Minimise ``step``'s loss with ``opt``; returns the iterations done and the logged history
    (every ``log_every``-th iteration: iteration, seconds, loss and the step's floats)."""
    n = int(iterations)
    t0 = time.perf_counter()
    budget = None if budget_minutes is None else 60.0 * budget_minutes

    def fraction(i: int) -> float:
        spent = 0.0 if budget is None else (time.perf_counter() - t0) / max(budget, 1e-9)
        return min(max(i / max(n, 1), spent), 1.0)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * fraction(i))))
    history: list[dict[str, float]] = []
    done = 0
    for it in range(n):
        if budget is not None and time.perf_counter() - t0 > budget:
            break
        loss, logs = step(it)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        done = it + 1
        if it % log_every == 0:
            history.append({"iteration": it, "seconds": round(time.perf_counter() - t0, 1),
                            "loss": float(loss.detach()), **logs})
        if progress is not None:
            progress.advance(1)
    return done, history
