"""Wall-time measurements of small, fast calls (one observation through a policy), shared by the demo and the benchmark."""

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def median_seconds(function: Callable[[], Any], repeats: int = 500, warmup: int = 20) -> float:
    """
    Median wall time of ``function()``: the median, because a shared machine adds rare long pauses that would dominate
    a mean of sub-millisecond calls.

    :param function: the call to time (no arguments)
    :param repeats: number of timed calls
    :param warmup: untimed calls first (lazy initialisation, caches, TorchScript's profiling runs)
    :return: seconds per call
    """
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return float(np.median(timings))


def predict_latency(model: Any, observation: np.ndarray, repeats: int = 500) -> float:
    """
    Median wall time of ``model.predict(observation, deterministic=True)`` for one observation.

    :param model: anything with SB3's ``predict`` (a model, a ``Teacher``)
    :param observation: one observation
    :param repeats: number of timed calls (after 20 warm-up calls)
    :return: seconds per call
    """
    return median_seconds(lambda: model.predict(observation, deterministic=True), repeats)
