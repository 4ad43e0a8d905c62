"""
Observations as the package passes them around: an array (or tensor), or a dict of them for ``Dict`` spaces.
"""

from typing import Any, TypeVar

import numpy as np
import torch as th

#: A batch of observations as tensors (``Dict`` spaces: one per key).
Obs = th.Tensor | dict[str, th.Tensor]
#: A batch of observations as arrays (``Dict`` spaces: one per key).
NumpyObs = np.ndarray | dict[str, np.ndarray]

ObsT = TypeVar("ObsT")


def obs_rows(obs: ObsT, index: Any) -> ObsT:
    """
    :param obs: a batch of observations, or a dict of them
    :param index: what selects the rows (a slice, an index array, or a tuple of them for (step, env) arrays)
    :return: the selected rows, of every key of a dict
    """
    if isinstance(obs, dict):
        return {key: value[index] for key, value in obs.items()}  # type: ignore[return-value]
    return obs[index]  # type: ignore[index]


__all__ = ["NumpyObs", "Obs", "obs_rows"]
