"""
Rollout buffers of DistillPPO: SB3's, plus what the kickstarting term needs.

* The teacher must see *raw* observations, while a VecNormalize-wrapped student's buffer holds normalized ones (SB3's
  rollout buffers store the observations as the policy saw them, because PPO's ratio must be computed on exactly
  those). So these buffers also keep the raw observations, taken from ``VecNormalize.get_original_obs()`` by the
  algorithm (``raw_obs_source``), as SB3's off-policy algorithms do for their replay buffers.
* Each sample carries its index in the flattened rollout, so that the teacher's outputs can be computed once per
  rollout (one batched forward pass) and looked up in each of PPO's ``n_epochs`` passes.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill.common.sampling import Obs

RawObs = np.ndarray | dict[str, np.ndarray]


class TeacherRolloutBufferSamples(NamedTuple):
    """SB3's ``RolloutBufferSamples`` / ``DictRolloutBufferSamples`` fields, plus each sample's index in the rollout."""

    observations: Obs
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    indices: th.Tensor


class TeacherRolloutMixin:
    """
    What :class:`TeacherRolloutBuffer` and :class:`TeacherDictRolloutBuffer` add to SB3's rollout buffers.

    ``raw_obs_source`` (set by the algorithm; ``None``: the observations are raw already) is called once per
    ``add()`` and returns the raw version of the observation being added, or ``None``.
    """

    raw_obs_source: Callable[[], RawObs | None] | None = None
    raw_observations: RawObs | None
    # Provided by SB3's buffers.
    observations: Any
    pos: int
    n_envs: int
    buffer_size: int
    generator_ready: bool
    device: th.device

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        self.raw_observations = None

    def add(self, obs: RawObs, *args: Any, **kwargs: Any) -> None:
        raw = self.raw_obs_source() if self.raw_obs_source is not None else None
        if raw is not None:
            self._store_raw(raw)
        super().add(obs, *args, **kwargs)  # type: ignore[misc]

    def _store_raw(self, raw: RawObs) -> None:
        if self.raw_observations is None:
            # Same layout and dtype as the student's observations, allocated on the first add of a rollout.
            self.raw_observations = _map(self.observations, np.zeros_like)
        for store, value in _pairs(self.raw_observations, raw):
            store[self.pos] = np.asarray(value).reshape(store.shape[1:])

    def teacher_observations(self) -> Obs:
        """
        :return: the observations the teacher must see, for the whole rollout, in the order of the sample indices:
            the raw ones if they were kept, else the student's own
        """
        if self.raw_observations is not None:
            flat = _map(self.raw_observations, self.swap_and_flatten)
        elif self.generator_ready:  # SB3 flattens its arrays in place on the first get()
            flat = self.observations
        else:
            flat = _map(self.observations, self.swap_and_flatten)
        return _map(flat, self.to_torch)

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> TeacherRolloutBufferSamples:
        samples = super()._get_samples(batch_inds, env)  # type: ignore[misc]
        return TeacherRolloutBufferSamples(*samples, th.as_tensor(batch_inds, device=self.device))  # type: ignore[call-arg]

    # Provided by SB3's BaseBuffer.
    swap_and_flatten: Callable[[np.ndarray], np.ndarray]
    to_torch: Callable[..., th.Tensor]


def _map(value: Any, function: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {key: function(item) for key, item in value.items()}
    return function(value)


def _pairs(store: RawObs, raw: RawObs) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(store, dict):
        assert isinstance(raw, dict)
        return [(store[key], raw[key]) for key in store]
    assert not isinstance(raw, dict)
    return [(store, raw)]


class TeacherRolloutBuffer(TeacherRolloutMixin, RolloutBuffer):  # type: ignore[misc]
    """SB3's ``RolloutBuffer`` that keeps the teacher's raw observations and gives sample indices."""


class TeacherDictRolloutBuffer(TeacherRolloutMixin, DictRolloutBuffer):  # type: ignore[misc]
    """SB3's ``DictRolloutBuffer`` that keeps the teacher's raw observations and gives sample indices."""


__all__ = ["TeacherDictRolloutBuffer", "TeacherRolloutBuffer", "TeacherRolloutBufferSamples", "TeacherRolloutMixin"]
