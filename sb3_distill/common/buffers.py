"""
Replay buffers that cache a frozen teacher's outputs per stored transition.

A distillation gradient step needs the teacher's logits (Q-values) on the sampled states, and for a teacher TD
target its Q-values on the next states. The teacher is frozen, so these are a function of the transition: computing
them once per transition, in one batched forward pass over everything added since the last update, replaces a
forward pass of the (large) teacher on every sampled batch by a gather. ``scripts/benchmark.py`` measures the
difference (``docs/benchmarks.md``).

The cache is filled by :meth:`TeacherCacheMixin.update_teacher_outputs` (DistillDQN calls it at the start of
``train()``); samples then carry ``teacher_logits`` (and ``teacher_next_q`` if cached) beside SB3's fields.
"""

from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill.teachers import Teacher


class TeacherReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` fields, plus the teacher's cached outputs for the sampled transitions."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    #: the teacher's ``action_logits(s)`` (Q-values for DQN teachers), shape (batch, n_actions)
    teacher_logits: th.Tensor | None = None
    #: the teacher's ``q_values(s')``, shape (batch, n_actions); only for 1-step buffers filled with ``next_q=True``
    teacher_next_q: th.Tensor | None = None


class TeacherCacheMixin:
    """
    Teacher outputs stored per transition, beside SB3's arrays, for a ``ReplayBuffer`` (or ``NStepReplayBuffer``).

    Transitions added since the last :meth:`update_teacher_outputs` are pending; the update computes them in one
    forward pass (in chunks of ``chunk_size``). A different teacher (or a switch to ``next_q=True``) invalidates
    the whole cache. The teacher itself is never stored (nor pickled): it is passed to each update.

    For n-step buffers only the logits on s are cached: the next state of an n-step sample depends on where the
    episode ends within the n steps, so ``teacher_next_q`` is ``None`` and the caller computes it.
    """

    #: transitions per teacher forward pass when filling the cache
    chunk_size: int = 4096

    # Provided by ReplayBuffer.
    buffer_size: int
    n_envs: int
    pos: int
    full: bool
    observations: np.ndarray
    next_observations: np.ndarray
    optimize_memory_usage: bool
    device: th.device

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.optimize_memory_usage:
            raise ValueError(
                f"{type(self).__name__} caches teacher outputs per transition and does not support "
                "optimize_memory_usage=True (the next observation there is overwritten in place): use SB3's ReplayBuffer."
            )
        self.teacher_logits: np.ndarray | None = None
        self.teacher_next_q: np.ndarray | None = None
        self._n_pending = 0
        self._cache_key: tuple[int, bool] | None = None

    # ------------------------------------------------------------------ storage
    def add(self, *args: Any, **kwargs: Any) -> None:
        super().add(*args, **kwargs)  # type: ignore[misc]
        self._n_pending = min(self._n_pending + 1, self.buffer_size)

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        self._n_pending = 0

    def __getstate__(self) -> dict[str, Any]:
        # The cache belongs to a teacher that is not pickled with the buffer: a loaded buffer starts uncached.
        state = self.__dict__.copy()
        state.update(teacher_logits=None, teacher_next_q=None, _n_pending=self.size(), _cache_key=None)  # type: ignore[attr-defined]
        return state

    @property
    def n_pending(self) -> int:
        """Stored transitions whose teacher outputs are not computed yet."""
        return self._n_pending

    def update_teacher_outputs(self, teacher: Teacher, next_q: bool = False) -> int:
        """
        Compute the teacher's outputs for every transition added since the last update, in batched forward passes.

        :param teacher: the frozen teacher (it receives the raw stored observations)
        :param next_q: also cache ``teacher.q_values(s')`` (for a teacher TD target; 1-step buffers only)
        :return: number of transitions computed
        """
        next_q = next_q and self.caches_next_q
        key = (id(teacher), next_q)
        if key != self._cache_key:
            self._cache_key, self._n_pending = key, self.size()  # type: ignore[attr-defined]
            self.teacher_next_q = None
        if self._n_pending == 0:
            return 0
        indices = (self.pos - self._n_pending + np.arange(self._n_pending)) % self.buffer_size
        for start in range(0, len(indices), self.chunk_size):
            chunk = indices[start : start + self.chunk_size]
            self._compute(teacher, chunk, next_q)
        computed, self._n_pending = self._n_pending, 0
        return computed

    @property
    def caches_next_q(self) -> bool:
        """Whether ``teacher_next_q`` can be cached (1-step returns: the next state of sample i is ``next_obs[i]``)."""
        return not isinstance(self, NStepReplayBuffer)

    def _compute(self, teacher: Teacher, chunk: np.ndarray, next_q: bool) -> None:
        obs = th.as_tensor(self.observations[chunk].reshape(len(chunk) * self.n_envs, *self.observations.shape[2:]))
        if next_q:
            next_obs = th.as_tensor(self.next_observations[chunk].reshape(obs.shape))
            # One pass over s and s' (the teacher TD target needs Q_T(s'); the logits of a Q teacher are Q_T(s)).
            both = teacher.q_values(th.cat([obs, next_obs])).cpu().numpy()
            logits, next_values = both[: len(obs)], both[len(obs) :]
        else:
            logits, next_values = teacher.action_logits(obs).cpu().numpy(), None
        if self.teacher_logits is None:
            self.teacher_logits = np.zeros((self.buffer_size, self.n_envs, logits.shape[-1]), dtype=np.float32)
        self.teacher_logits[chunk] = logits.reshape(len(chunk), self.n_envs, -1)
        if next_values is not None:
            if self.teacher_next_q is None:
                self.teacher_next_q = np.zeros_like(self.teacher_logits)
            self.teacher_next_q[chunk] = next_values.reshape(len(chunk), self.n_envs, -1)

    # ------------------------------------------------------------------ sampling
    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> TeacherReplayBufferSamples:
        # SB3 draws the env index of each sample inside _get_samples and does not return it: with several envs,
        # replay the same draw from the same RNG state (the parent's first draw) so the cache rows match the samples.
        state = np.random.get_state() if self.n_envs > 1 else None
        samples = super()._get_samples(batch_inds, env)  # type: ignore[misc]
        if state is None:
            env_indices = np.zeros(len(batch_inds), dtype=np.int64)
        else:
            after = np.random.get_state()
            np.random.set_state(state)
            env_indices = np.random.randint(0, self.n_envs, size=(len(batch_inds),))
            np.random.set_state(after)
        if self._n_pending > 0 or self.teacher_logits is None:
            # Stale or missing rows must never be served silently.
            return TeacherReplayBufferSamples(**samples._asdict())
        logits = th.as_tensor(self.teacher_logits[batch_inds, env_indices], device=self.device)
        next_q = None
        if self.teacher_next_q is not None:
            next_q = th.as_tensor(self.teacher_next_q[batch_inds, env_indices], device=self.device)
        return TeacherReplayBufferSamples(**samples._asdict(), teacher_logits=logits, teacher_next_q=next_q)


# The samples carry two more fields than SB3's ReplayBufferSamples (a NamedTuple cannot be subclassed with fields).
class TeacherReplayBuffer(TeacherCacheMixin, ReplayBuffer):  # type: ignore[misc]
    """SB3's ``ReplayBuffer`` with the teacher's outputs cached per transition (see :class:`TeacherCacheMixin`)."""


class TeacherNStepReplayBuffer(TeacherCacheMixin, NStepReplayBuffer):  # type: ignore[misc]
    """SB3's ``NStepReplayBuffer`` with the teacher's logits on s cached per transition (see :class:`TeacherCacheMixin`)."""


__all__ = ["TeacherCacheMixin", "TeacherNStepReplayBuffer", "TeacherReplayBuffer", "TeacherReplayBufferSamples"]
