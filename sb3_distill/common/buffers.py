"""
SB3's buffers, plus what the teacher sees and what it said: the buffer side of the teacher-observation seam.

At insertion time each buffer keeps the observation the teacher needs (see
:mod:`sb3_distill.common.teacher_observations`); before training, the teacher's outputs for every transition added
since the last update are computed in one batched forward pass and kept beside it, so that a gradient step gathers
them instead of running the (large) teacher on each sampled batch. ``python -m scripts.benchmark`` measures the difference
(``docs/benchmarks.md``).

* Replay buffers (:class:`TeacherReplayBuffer`, :class:`TeacherDictReplayBuffer`, :class:`TeacherNStepReplayBuffer`;
  DistillDQN and PolicyDistill): SB3 already stores the *un-normalized* observations, which are what the teacher
  sees by default, so nothing more is stored; when the env supplies teacher observations they are stored beside the
  student's (``teacher_observations`` / ``teacher_next_observations``). Samples are SB3's, normalized as SB3
  normalizes them (same random draws), plus ``teacher_observations``, ``teacher_next_observations`` (of s_{t+k}
  for n-step samples, k where SB3's n-step return stops) and the cached ``teacher_outputs``.
* Rollout buffers (:class:`TeacherRolloutBuffer`, :class:`TeacherDictRolloutBuffer`; DistillPPO): SB3 stores the
  observations as the policy saw them (normalized), so the teacher's are stored beside them whenever they differ;
  each sample carries its index in the rollout, where DistillPPO looks up the teacher's outputs on the rollout.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import (
    DictReplayBuffer,
    DictRolloutBuffer,
    NStepReplayBuffer,
    ReplayBuffer,
    RolloutBuffer,
)
from stable_baselines3.common.preprocessing import get_obs_shape
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill.common.obs import NumpyObs, Obs, obs_rows
from sb3_distill.common.teacher_observations import TEACHER_OBSERVATION_KEY, TeacherObservations, TeacherTransition
from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.teachers import Teacher

#: What a teacher-output cache computes on a batch of teacher observations: named tensors, batch first.
TeacherOutputsFn = Callable[[Obs], dict[str, th.Tensor]]


class TeacherReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` fields (normalized for the student), plus what the teacher sees and said."""

    observations: Obs
    actions: th.Tensor
    next_observations: Obs
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    #: what the teacher sees of s (by default the un-normalized observation: the teacher normalizes its own inputs);
    #: ``None`` in a batch with fresh cached outputs sampled with ``outputs_suffice=True``
    teacher_observations: Obs | None = None
    #: what it sees of the next observation (s_{t+k} for n-step buffers)
    teacher_next_observations: Obs | None = None
    #: the cached teacher outputs on s (e.g. ``"logits"``: shape (batch, n_actions)); ``None`` if not cached
    teacher_outputs: dict[str, th.Tensor] | None = None

    @property
    def teacher_logits(self) -> th.Tensor | None:
        """The cached ``teacher_outputs["logits"]`` (DistillDQN's cache), or ``None``."""
        return None if self.teacher_outputs is None else self.teacher_outputs.get("logits")


def teacher_logits_outputs(teacher: Teacher) -> tuple[TeacherOutputsFn, str]:
    """
    :param teacher: a teacher with discrete actions
    :return: the cache's function (``{"logits": action_logits(obs)}``) and key (the teacher's fingerprint)
    """
    return (lambda obs: {"logits": teacher.action_logits(obs)}), teacher.fingerprint


# ---------------------------------------------------------------------------------------------- helpers
def _flat(obs: NumpyObs, n: int, device: th.device) -> Obs:
    if isinstance(obs, dict):
        return {key: th.as_tensor(value.reshape(n, *value.shape[2:]), device=device) for key, value in obs.items()}
    return th.as_tensor(obs.reshape(n, *obs.shape[2:]), device=device)


def _to_torch(obs: NumpyObs, device: th.device) -> Obs:
    if isinstance(obs, dict):
        return {key: th.tensor(value, device=device) for key, value in obs.items()}
    return th.tensor(obs, device=device)


def _allocate(space: spaces.Space, length: int, n_envs: int) -> NumpyObs:
    shape = get_obs_shape(space)
    if isinstance(shape, dict):
        assert isinstance(space, spaces.Dict)
        return {key: np.zeros((length, n_envs, *sub), dtype=space.spaces[key].dtype) for key, sub in shape.items()}
    return np.zeros((length, n_envs, *shape), dtype=space.dtype)


def _store(store: NumpyObs, row: int, value: NumpyObs) -> None:
    if isinstance(store, dict):
        assert isinstance(value, dict)
        for key in store:
            store[key][row] = np.asarray(value[key]).reshape(store[key].shape[1:])
    else:
        store[row] = np.asarray(value).reshape(store.shape[1:])


def _missing_transition(buffer: Any) -> IncompatibleTeacherError:
    return IncompatibleTeacherError(
        f"{type(buffer).__name__} keeps the teacher's own observations (the env supplies {TEACHER_OBSERVATION_KEY!r}), "
        "but nothing recorded them for this add(): transitions must come from the algorithm's own collection "
        "(learn()), which follows the env's teacher observations."
    )


# ---------------------------------------------------------------------------------------------- replay buffers
class TeacherCacheMixin:
    """
    The teacher's observations and cached outputs for SB3's ``ReplayBuffer``, ``DictReplayBuffer`` and
    ``NStepReplayBuffer`` (sampling, storage and normalization are SB3's own, unchanged).

    The algorithm attaches its :class:`~sb3_distill.common.teacher_observations.TeacherObservations` with
    :meth:`attach_teacher_observations`; when the env supplies teacher observations, each ``add()`` stores the
    step's :class:`~sb3_distill.common.teacher_observations.TeacherTransition`. SB3 draws the env index of each sample
    inside ``_get_samples``; the same indices are drawn again from the same NumPy random state, which is then put
    back as SB3 left it, so a DistillDQN student samples exactly the batches a DQN would.

    Transitions added since the last :meth:`update_teacher_outputs` are pending; the update computes them in one
    forward pass (in chunks of ``chunk_size``), and samples carry ``teacher_outputs`` only when none is pending.
    Another cache key (another teacher, or other outputs) invalidates the whole cache. The teacher itself is never
    stored (nor pickled): it is passed to each update. The cache is saved with the buffer.
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
    dones: np.ndarray
    timeouts: np.ndarray
    optimize_memory_usage: bool
    device: th.device

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teacher_source: TeacherObservations | None = None
        #: what the teacher sees of s and s', when the env supplies it (else the stored observations are the teacher's)
        self.teacher_observations: NumpyObs | None = None
        self.teacher_next_observations: NumpyObs | None = None
        #: cached teacher outputs, name -> array (buffer_size, n_envs, ...)
        self.teacher_outputs: dict[str, np.ndarray] | None = None
        self._outputs_key: str | None = None
        self._n_pending = 0
        self._outputs_suffice = False
        #: a deferred update's function (``update_teacher_outputs(..., lazy=True)``), run when a batch needs it
        self._deferred: TeacherOutputsFn | None = None

    def attach_teacher_observations(self, source: TeacherObservations | None) -> None:
        """
        :param source: what the teacher sees of the env whose transitions are added (``None``: the added
            observations themselves)
        """
        self.teacher_source = source
        if source is not None and source.source == "env" and self.teacher_observations is None:
            assert source.space is not None
            self.teacher_observations = _allocate(source.space, self.buffer_size, self.n_envs)
            self.teacher_next_observations = _allocate(source.space, self.buffer_size, self.n_envs)

    # ------------------------------------------------------------------ storage
    def add(self, *args: Any, **kwargs: Any) -> None:
        transition = self.teacher_source.take_transition() if self.teacher_source is not None else None
        if self.teacher_observations is not None:
            if transition is None:
                raise _missing_transition(self)
            assert self.teacher_next_observations is not None
            _store(self.teacher_observations, self.pos, transition.observations)
            _store(self.teacher_next_observations, self.pos, transition.next_observations)
        super().add(*args, **kwargs)  # type: ignore[misc]
        self._n_pending = min(self._n_pending + 1, self.buffer_size)

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        self._n_pending = 0

    @property
    def n_pending(self) -> int:
        """Stored transitions whose teacher outputs are not computed yet."""
        return self._n_pending

    def update_teacher_outputs(self, teacher: Teacher | TeacherOutputsFn, key: str | None = None, lazy: bool = False) -> int:
        """
        Compute the teacher's outputs for every transition added since the last update, in batched forward passes.

        :param teacher: a :class:`~sb3_distill.teachers.Teacher` (its logits are cached under ``"logits"``, keyed by
            its fingerprint), or a function of a batch of teacher observations giving named output tensors
        :param key: with a function: what its outputs depend on (teachers' fingerprints, temperatures...); another
            key than the cached one recomputes everything
        :param lazy: defer the new transitions (fewer than ``chunk_size``, same key) until a sampled batch holds one of
            them: at one new transition per gradient step most batches do not, and one pass over the transitions
            gathered meanwhile costs about what a pass over one does. Batches are never served stale outputs either way
        :return: number of transitions computed
        """
        if isinstance(teacher, Teacher):
            compute, key = teacher_logits_outputs(teacher)
        else:
            compute = teacher
            if key is None:
                raise ValueError("update_teacher_outputs(function) needs the key its outputs depend on.")
        # The cache is saved with the buffer (save_replay_buffer) and stays valid for the same key, whatever process
        # loads it: recomputing it in other batch sizes would change the last bits of the outputs.
        if key != self._outputs_key:
            self._outputs_key, self._n_pending, self.teacher_outputs = key, self.size(), None  # type: ignore[attr-defined]
        self._deferred = None
        if self._n_pending == 0:
            return 0
        if lazy and self.teacher_outputs is not None and self._n_pending < self.chunk_size:
            self._deferred = compute
            return 0
        return self._compute_pending(compute)

    def _compute_pending(self, compute: TeacherOutputsFn) -> int:
        """Compute the outputs of the pending transitions (in chunks), which are then fresh."""
        self._deferred = None
        stored = self.teacher_observations if self.teacher_observations is not None else self.observations
        indices = (self.pos - self._n_pending + np.arange(self._n_pending)) % self.buffer_size
        for start in range(0, len(indices), self.chunk_size):
            chunk = indices[start : start + self.chunk_size]
            obs = _flat(obs_rows(stored, (chunk, slice(None))), len(chunk) * self.n_envs, self.device)
            with th.no_grad():
                outputs = compute(obs)
            if self.teacher_outputs is None:
                self.teacher_outputs = {
                    name: np.zeros((self.buffer_size, self.n_envs, *value.shape[1:]), dtype=np.float32)
                    for name, value in outputs.items()
                }
            for name, value in outputs.items():
                self.teacher_outputs[name][chunk] = value.cpu().numpy().reshape(len(chunk), self.n_envs, *value.shape[1:])
        computed, self._n_pending = self._n_pending, 0
        return computed

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int, env: VecNormalize | None = None, outputs_suffice: bool = False) -> Any:
        """
        SB3's ``sample``, plus what the teacher sees and said.

        :param batch_size: number of transitions
        :param env: the ``VecNormalize`` that normalizes the student's observations, if any
        :param outputs_suffice: the caller reads nothing of the teacher but its cached outputs (PolicyDistill's loss):
            a batch that has fresh cached outputs then comes without the teacher's observations (``None``), which
            would cost two more tensors per batch; without fresh outputs it has them all the same
        :return: a :class:`TeacherReplayBufferSamples`
        """
        self._outputs_suffice = outputs_suffice
        try:
            return super().sample(batch_size, env)  # type: ignore[misc]
        finally:
            self._outputs_suffice = False

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> TeacherReplayBufferSamples:
        state = np.random.get_state() if self.n_envs > 1 else None
        samples: ReplayBufferSamples | DictReplayBufferSamples = super()._get_samples(batch_inds, env)  # type: ignore[misc]
        env_indices = self._drawn_env_indices(state, len(batch_inds))
        if self._deferred is not None and self._n_pending > 0 and self._holds_pending(batch_inds):
            self._compute_pending(self._deferred)
        outputs = None
        # Stale or missing rows are never served: the caller then asks the teacher. (With a deferred update, the
        # pending rows are not in this batch: the others are fresh.)
        fresh = self._n_pending == 0 or self._deferred is not None
        if fresh and self.teacher_outputs is not None:
            # One row index per sample into (buffer_size * n_envs, ...) views: a plain take, cheaper than indexing
            # two axes (the same rows)
            rows = batch_inds if self.n_envs == 1 else batch_inds * self.n_envs + env_indices
            outputs = {
                name: th.as_tensor(value.reshape(-1, *value.shape[2:]).take(rows, axis=0), device=self.device)
                for name, value in self.teacher_outputs.items()
            }
        teacher_obs: Obs | None
        teacher_next: Obs | None
        if outputs is not None and getattr(self, "_outputs_suffice", False):
            teacher_obs = teacher_next = None
        elif self.teacher_observations is not None:
            assert self.teacher_next_observations is not None
            teacher_obs = _to_torch(obs_rows(self.teacher_observations, (batch_inds, env_indices)), self.device)
            next_rows = self._next_rows(batch_inds, env_indices)
            teacher_next = _to_torch(obs_rows(self.teacher_next_observations, (next_rows, env_indices)), self.device)
        elif env is None:
            # Without VecNormalize the samples are the stored (un-normalized) observations already.
            teacher_obs, teacher_next = samples.observations, samples.next_observations
        else:
            teacher_obs = _to_torch(obs_rows(self.observations, (batch_inds, env_indices)), self.device)
            if self.optimize_memory_usage:  # SB3's memory-saving layout: s' is the next row's observation
                next_obs = obs_rows(self.observations, ((batch_inds + 1) % self.buffer_size, env_indices))
            else:
                next_obs = obs_rows(self.next_observations, (self._next_rows(batch_inds, env_indices), env_indices))
            teacher_next = _to_torch(next_obs, self.device)
        return TeacherReplayBufferSamples(
            **samples._asdict(),
            teacher_observations=teacher_obs,
            teacher_next_observations=teacher_next,
            teacher_outputs=outputs,
        )

    def _holds_pending(self, batch_inds: np.ndarray) -> bool:
        """Whether a batch holds a pending transition (the last ``n_pending`` rows added, before ``pos``)."""
        first_pending = self.pos - self._n_pending
        if first_pending >= 0 and not self.full:  # SB3 samples rows below pos only: one comparison with the largest
            return bool(batch_inds.max() >= first_pending)
        return bool(np.any((batch_inds - first_pending) % self.buffer_size < self._n_pending))

    def _drawn_env_indices(self, state: Any, n: int) -> np.ndarray:
        """The env indices SB3's ``_get_samples`` drew (its first draw) from ``state``; NumPy's state left as SB3 left it."""
        if state is None:
            return np.zeros(n, dtype=np.int64)
        after = np.random.get_state()
        np.random.set_state(state)
        try:
            return np.random.randint(0, high=self.n_envs, size=(n,))
        finally:
            np.random.set_state(after)

    def _next_rows(self, batch_inds: np.ndarray, env_indices: np.ndarray) -> np.ndarray:
        """Rows of ``next_observations`` that SB3's samples take s' from: t, or t + k for n-step buffers."""
        n_steps = getattr(self, "n_steps", 1)
        if n_steps == 1:
            return batch_inds
        # NStepReplayBuffer._get_samples: the return stops at the first done or timeout within n steps, the last
        # stored row (pos - 1) counting as a timeout.
        indices = (batch_inds[:, None] + np.arange(n_steps)[None, :]) % self.buffer_size
        stops = np.logical_or(self.dones[indices, env_indices[:, None]], self.timeouts[indices, env_indices[:, None]])
        stops |= indices == (self.pos - 1) % self.buffer_size
        offsets = np.where(stops.any(axis=1), stops.argmax(axis=1), n_steps - 1)
        return (batch_inds + offsets) % self.buffer_size

    # ------------------------------------------------------------------ pickling (save_replay_buffer)
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["teacher_source"] = None  # follows a live env; re-attached by the algorithm
        state["_deferred"] = None  # a function of the live teacher: the pending rows are computed at the next update
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Buffers saved before the seam cached "teacher_logits" under "_cache_key" (the teacher's fingerprint).
        logits, key = state.pop("teacher_logits", None), state.pop("_cache_key", None)
        if logits is not None:
            state.setdefault("teacher_outputs", {"logits": logits})
            state.setdefault("_outputs_key", key)
        names = ("teacher_source", "teacher_observations", "teacher_next_observations", "teacher_outputs", "_outputs_key")
        for name in (*names, "_deferred"):
            state.setdefault(name, None)
        self.__dict__.update(state)


# The samples carry more fields than SB3's ReplayBufferSamples (a NamedTuple cannot be subclassed with fields).
class TeacherReplayBuffer(TeacherCacheMixin, ReplayBuffer):  # type: ignore[misc]
    """SB3's ``ReplayBuffer`` with the teacher's observations and cached outputs (see :class:`TeacherCacheMixin`)."""


class TeacherDictReplayBuffer(TeacherCacheMixin, DictReplayBuffer):  # type: ignore[misc]
    """SB3's ``DictReplayBuffer`` with the teacher's observations and cached outputs (see :class:`TeacherCacheMixin`)."""


class TeacherNStepReplayBuffer(TeacherCacheMixin, NStepReplayBuffer):  # type: ignore[misc]
    """SB3's ``NStepReplayBuffer`` with the teacher's observations and cached outputs (see :class:`TeacherCacheMixin`)."""


def teacher_replay_buffer_class(observation_space: spaces.Space, n_steps: int = 1) -> type[ReplayBuffer]:
    """
    :param observation_space: the student's observation space
    :param n_steps: n of n-step returns (SB3's ``NStepReplayBuffer`` when > 1)
    :return: SB3's choice of buffer (off_policy_algorithm.py, ``_setup_model``), with the teacher's observations and
        outputs
    """
    if isinstance(observation_space, spaces.Dict):
        return TeacherDictReplayBuffer
    return TeacherNStepReplayBuffer if n_steps > 1 else TeacherReplayBuffer


def as_teacher_replay_buffer(buffer: ReplayBuffer) -> ReplayBuffer:
    """
    :param buffer: an SB3 replay buffer (e.g. a teacher dataset as :func:`~sb3_distill.common.datasets.load_teacher_dataset`
        returns it)
    :return: the same data in the matching teacher buffer (a buffer that is one already is returned as it is)
    """
    if isinstance(buffer, TeacherCacheMixin):
        return buffer
    if type(buffer) not in (ReplayBuffer, DictReplayBuffer, NStepReplayBuffer):
        return buffer  # a custom buffer: the teacher then labels each sampled batch
    converted = teacher_replay_buffer_class(buffer.observation_space, getattr(buffer, "n_steps", 1))
    state = {**buffer.__dict__}
    result = converted.__new__(converted)
    result.__setstate__(state)  # type: ignore[attr-defined]
    result._n_pending = buffer.size()  # type: ignore[attr-defined]
    return result


# ---------------------------------------------------------------------------------------------- rollout buffers
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

    The algorithm attaches its :class:`~sb3_distill.common.teacher_observations.TeacherObservations`
    (:meth:`attach_teacher_observations`). When the teacher does not see the student's observations (a
    VecNormalize-wrapped student, or an env that supplies teacher observations) each ``add()`` stores the teacher's
    view of the observation added, taken from the step's
    :class:`~sb3_distill.common.teacher_observations.TeacherTransition`.
    """

    teacher_source: TeacherObservations | None = None
    #: what the teacher sees of each stored observation, when it is not the observation itself
    teacher_observations: NumpyObs | None = None
    # Provided by SB3's buffers.
    observations: Any
    observation_space: spaces.Space
    pos: int
    n_envs: int
    buffer_size: int
    generator_ready: bool
    device: th.device

    def attach_teacher_observations(self, source: TeacherObservations | None) -> None:
        """
        :param source: what the teacher sees of the env whose steps are added (``None``: the added observations)
        """
        self.teacher_source = source
        self.teacher_observations = None
        if source is not None and source.source != "student":
            space = source.space if source.space is not None else self.observation_space
            self.teacher_observations = _allocate(space, self.buffer_size, self.n_envs)

    def add(self, obs: NumpyObs, *args: Any, **kwargs: Any) -> None:
        if self.teacher_observations is not None:
            assert self.teacher_source is not None
            transition: TeacherTransition | None = self.teacher_source.take_transition()
            if transition is None:
                raise _missing_transition(self)
            _store(self.teacher_observations, self.pos, transition.observations)
        super().add(obs, *args, **kwargs)  # type: ignore[misc]

    def rollout_teacher_observations(self) -> Obs:
        """
        :return: what the teacher sees of the whole rollout, in the order of the sample indices: the stored teacher
            observations, else the student's own
        """
        if self.teacher_observations is not None:
            flat = _map(self.teacher_observations, self.swap_and_flatten)
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

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("teacher_source", None)
        return state

    # Provided by SB3's BaseBuffer.
    swap_and_flatten: Callable[[np.ndarray], np.ndarray]
    to_torch: Callable[..., th.Tensor]


def _map(value: Any, function: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {key: function(item) for key, item in value.items()}
    return function(value)


class TeacherRolloutBuffer(TeacherRolloutMixin, RolloutBuffer):  # type: ignore[misc]
    """SB3's ``RolloutBuffer`` that keeps the teacher's observations and gives sample indices."""


class TeacherDictRolloutBuffer(TeacherRolloutMixin, DictRolloutBuffer):  # type: ignore[misc]
    """SB3's ``DictRolloutBuffer`` that keeps the teacher's observations and gives sample indices."""


__all__ = [
    "TeacherCacheMixin",
    "TeacherDictReplayBuffer",
    "TeacherDictRolloutBuffer",
    "TeacherNStepReplayBuffer",
    "TeacherOutputsFn",
    "TeacherReplayBuffer",
    "TeacherReplayBufferSamples",
    "TeacherRolloutBuffer",
    "TeacherRolloutBufferSamples",
    "TeacherRolloutMixin",
    "as_teacher_replay_buffer",
    "teacher_logits_outputs",
    "teacher_replay_buffer_class",
]
