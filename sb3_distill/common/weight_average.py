"""
An exponential moving average of a student's weights (``ema_tau`` of PolicyDistill and DistillDQN):
θ̄ ← (1 − τ) θ̄ + τ θ after every gradient step. Outside ``train()`` the network that acts holds θ̄ (it acts in the
env, predicts, is saved and exported); the gradient steps update θ, kept meanwhile in a copy of that network (saved
too, so that training resumes exactly). The two are exchanged by swapping their storages, never copied.
"""

import functools
import math
from collections.abc import Callable
from typing import Any

import torch as th
from torch.optim.swa_utils import get_ema_multi_avg_fn


def check_ema_tau(ema_tau: float | None) -> None:
    """
    :param ema_tau: τ in (0, 1], or ``None`` (no average); raises ``ValueError`` otherwise, naming the range
    """
    if ema_tau is not None and not (isinstance(ema_tau, (int, float)) and math.isfinite(ema_tau) and 0 < ema_tau <= 1):
        raise ValueError(
            f"ema_tau must be in (0, 1] or None (got {ema_tau}): e.g. 0.01 averages about the last 100 gradient steps."
        )


@functools.lru_cache(maxsize=8)
def ema_update(tau: float) -> Callable[[list[th.Tensor], list[th.Tensor], Any], None]:
    """
    :param tau: τ of θ̄ ← (1 - τ) θ̄ + τ θ
    :return: torch's EMA update of parameter lists (``update(averaged, trained, None)``: one foreach lerp,
        θ̄ + τ (θ - θ̄)), made once per τ
    """
    return get_ema_multi_avg_fn(1.0 - tau)


def swap_weights(acting: list[th.Tensor], other: list[th.Tensor]) -> None:
    """
    Exchange the weights of two lists of parameters (their storages: no copy; an optimizer keeps its parameter
    objects, which then hold the other weights).

    :param acting: the parameters of the network that acts
    :param other: the parameters of its copy
    """
    # .data reads and writes the storages without autograd: no no_grad() context needed
    for first, second in zip(acting, other, strict=True):
        first.data, second.data = second.data, first.data


__all__ = ["check_ema_tau", "ema_update", "swap_weights"]
