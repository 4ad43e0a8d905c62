"""
SB3's replay buffers, plus what a frozen teacher needs at each gradient step.

A distillation step needs the teacher's logits (Q-values for a DQN teacher) on the sampled states, computed on the
*raw* observations (the teacher has its own normalization; the student's ``VecNormalize`` must not leak into it).
The teacher is frozen, so its logits are a function of the stored transition: computing them once per transition,
in one batched forward pass over everything added since the last update, replaces a forward pass of the (large)
teacher on every sampled batch by a gather. ``python -m scripts.benchmark`` measures the difference (``docs/benchmarks.md``).

Samples are SB3's, normalized exactly as SB3 normalizes them (``sample(batch_size, env=vec_normalize)``), with three
more fields: the raw ``teacher_observations`` / ``teacher_next_observations`` and the cached ``teacher_logits``.
The cache is filled by :meth:`TeacherCacheMixin.update_teacher_outputs` (DistillDQN calls it at the start of
``train()``). Rows added since are never served: ``teacher_logits`` is then ``None`` and the caller computes them.
"""

from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill.common.obs import NumpyObs, Obs
from sb3_distill.teachers import Teacher


class TeacherReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` fields (normalized for the student), plus what the teacher needs."""

    observations: Obs
    actions: th.Tensor
    next_observations: Obs
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    #: the raw observations s (what the env produced: the teacher normalizes its own inputs)
    teacher_observations: Obs | None = None
    #: the raw next observations (s_{t+n} for n-step buffers)
    teacher_next_observations: Obs | None = None
    #: the teacher's ``action_logits(s)`` (Q-values for DQN teachers), shape (batch, n_actions); None if not cached
    teacher_logits: th.Tensor | None = None


def _rows(obs: NumpyObs, rows: Any, columns: Any) -> NumpyObs:
    if isinstance(obs, dict):
        return {key: value[rows, columns] for key, value in obs.items()}
    return obs[rows, columns]


def _same_rows(candidates: NumpyObs, sampled: Obs) -> np.ndarray:
    """(batch, n_candidates) mask: candidate j of sample i equals the sampled observation i, over every key."""
    if isinstance(candidates, dict):
        assert isinstance(sampled, dict)
        masks = [_same_rows(candidates[key], sampled[key]) for key in candidates]
        return np.logical_and.reduce(masks)
    assert isinstance(sampled, th.Tensor)
    sampled_np = sampled.cpu().numpy()
    equal = candidates == sampled_np[:, None]
    return equal.reshape(*equal.shape[:2], -1).all(axis=2)


class TeacherCacheMixin:
    """
    Raw observations and cached teacher logits for SB3's ``ReplayBuffer``, ``DictReplayBuffer`` and
    ``NStepReplayBuffer`` (sampling, storage and normalization are SB3's own, unchanged).

    SB3 draws the env index of each sample inside ``_get_samples`` and does not return it. The teacher's outputs
    and the raw observation are functions of the stored observation, so the env column is recovered from the
    sampled observation itself: the column whose stored row, normalized as SB3 normalized the sample, equals it
    (two columns holding the same observation give the same teacher outputs). Nothing of SB3's sampling changes,
    so a DistillDQN student samples exactly the batches a DQN would.

    Transitions added since the last :meth:`update_teacher_outputs` are pending; the update computes them in one
    forward pass (in chunks of ``chunk_size``). A different teacher invalidates the whole cache. The teacher itself
    is never stored (nor pickled): it is passed to each update.
    """

    #: transitions per teacher forward pass when filling the cache
    chunk_size: int = 4096

    # Provided by SB3's buffers.
    buffer_size: int
    n_envs: int
    pos: int
    full: bool
    observations: NumpyObs
    next_observations: NumpyObs
    optimize_memory_usage: bool
    device: th.device

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teacher_logits: np.ndarray | None = None
        self._n_pending = 0
        self._cache_key: str | None = None

    # ------------------------------------------------------------------ storage
    def add(self, *args: Any, **kwargs: Any) -> None:
        super().add(*args, **kwargs)  # type: ignore[misc]
        self._n_pending = min(self._n_pending + 1, self.buffer_size)

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        self._n_pending = 0

    @property
    def n_pending(self) -> int:
        """Stored transitions whose teacher outputs are not computed yet."""
        return self._n_pending

    def update_teacher_outputs(self, teacher: Teacher) -> int:
        """
        Compute the teacher's logits for every transition added since the last update, in batched forward passes.

        :param teacher: the frozen teacher (it receives the raw stored observations)
        :return: number of transitions computed
        """
        # The cache is saved with the buffer (save_replay_buffer) and stays valid for the same teacher, whatever
        # process loads it: recomputing it in other batch sizes would change the last bits of the logits.
        if teacher.fingerprint != self._cache_key:
            self._cache_key, self._n_pending = teacher.fingerprint, self.size()  # type: ignore[attr-defined]
        if self._n_pending == 0:
            return 0
        indices = (self.pos - self._n_pending + np.arange(self._n_pending)) % self.buffer_size
        for start in range(0, len(indices), self.chunk_size):
            chunk = indices[start : start + self.chunk_size]
            obs = _rows(self.observations, chunk, slice(None))  # (chunk, n_envs, ...)
            logits = teacher.action_logits(_flat(obs, len(chunk) * self.n_envs)).cpu().numpy()
            if self.teacher_logits is None:
                self.teacher_logits = np.zeros((self.buffer_size, self.n_envs, logits.shape[-1]), dtype=np.float32)
            self.teacher_logits[chunk] = logits.reshape(len(chunk), self.n_envs, -1)
        computed, self._n_pending = self._n_pending, 0
        return computed

    # ------------------------------------------------------------------ sampling
    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> TeacherReplayBufferSamples:
        samples: ReplayBufferSamples | DictReplayBufferSamples = super()._get_samples(batch_inds, env)  # type: ignore[misc]
        env_indices = self._env_indices(batch_inds, samples.observations, env)
        # Without VecNormalize the samples are the raw observations already.
        teacher_obs = (
            samples.observations if env is None else _to_torch(_rows(self.observations, batch_inds, env_indices), self.device)
        )
        teacher_next_obs = samples.next_observations if env is None else self._raw_next(batch_inds, env_indices, samples, env)
        logits = None
        # Stale or missing rows are never served: the caller then asks the teacher.
        if self._n_pending == 0 and self.teacher_logits is not None:
            logits = th.as_tensor(self.teacher_logits[batch_inds, env_indices], device=self.device)
        return TeacherReplayBufferSamples(
            **samples._asdict(),
            teacher_observations=teacher_obs,
            teacher_next_observations=teacher_next_obs,
            teacher_logits=logits,
        )

    def _env_indices(self, batch_inds: np.ndarray, sampled: Obs, env: VecNormalize | None) -> np.ndarray:
        if self.n_envs == 1:
            return np.zeros(len(batch_inds), dtype=np.int64)
        # Every env column of the sampled rows, normalized as SB3 normalized the sample (same operations, same bits).
        candidates = _normalize(_rows(self.observations, batch_inds, slice(None)), env)
        return _same_rows(candidates, sampled).argmax(axis=1)

    def _raw_next(self, batch_inds: np.ndarray, env_indices: np.ndarray, samples: Any, env: VecNormalize) -> Obs:
        """Raw next observations of normalized samples: row t+1 (memory-saving layout) or t+k, k < n (n-step)."""
        if self.optimize_memory_usage:
            return _to_torch(_rows(self.observations, (batch_inds + 1) % self.buffer_size, env_indices), self.device)
        n_steps = getattr(self, "n_steps", 1)
        if n_steps == 1:
            return _to_torch(_rows(self.next_observations, batch_inds, env_indices), self.device)
        # An n-step sample ends at the first done/truncation within n steps: find which stored next row it is.
        candidates = [_rows(self.next_observations, (batch_inds + k) % self.buffer_size, env_indices) for k in range(n_steps)]
        stacked = _stack([_normalize(candidate, env) for candidate in candidates])
        offsets = _same_rows(stacked, samples.next_observations).argmax(axis=1)
        return _to_torch(_rows(self.next_observations, (batch_inds + offsets) % self.buffer_size, env_indices), self.device)


def _normalize(obs: NumpyObs, env: VecNormalize | None) -> NumpyObs:
    return obs if env is None else env.normalize_obs(obs)


def _flat(obs: NumpyObs, n: int) -> Obs:
    if isinstance(obs, dict):
        return {key: th.as_tensor(value.reshape(n, *value.shape[2:])) for key, value in obs.items()}
    return th.as_tensor(obs.reshape(n, *obs.shape[2:]))


def _stack(per_offset: list[NumpyObs]) -> NumpyObs:
    """(batch, n_offsets, ...) from a list of (batch, ...) arrays (or dicts of them)."""
    if isinstance(per_offset[0], dict):
        return {key: np.stack([obs[key] for obs in per_offset], axis=1) for key in per_offset[0]}  # type: ignore[index]
    return np.stack(per_offset, axis=1)  # type: ignore[arg-type]


def _to_torch(obs: NumpyObs, device: th.device) -> Obs:
    if isinstance(obs, dict):
        return {key: th.tensor(value, device=device) for key, value in obs.items()}
    return th.tensor(obs, device=device)


# The samples carry three more fields than SB3's ReplayBufferSamples (a NamedTuple cannot be subclassed with fields).
class TeacherReplayBuffer(TeacherCacheMixin, ReplayBuffer):  # type: ignore[misc]
    """SB3's ``ReplayBuffer`` with raw observations and cached teacher logits (see :class:`TeacherCacheMixin`)."""


class TeacherDictReplayBuffer(TeacherCacheMixin, DictReplayBuffer):  # type: ignore[misc]
    """SB3's ``DictReplayBuffer`` with raw observations and cached teacher logits (see :class:`TeacherCacheMixin`)."""


class TeacherNStepReplayBuffer(TeacherCacheMixin, NStepReplayBuffer):  # type: ignore[misc]
    """SB3's ``NStepReplayBuffer`` with raw observations and cached teacher logits (see :class:`TeacherCacheMixin`)."""


__all__ = [
    "TeacherCacheMixin",
    "TeacherDictReplayBuffer",
    "TeacherNStepReplayBuffer",
    "TeacherReplayBuffer",
    "TeacherReplayBufferSamples",
]
