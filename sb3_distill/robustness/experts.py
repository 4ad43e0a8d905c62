"""
Several dynamics-teachers into one student: each teacher is the expert of its own dynamics, and the expert of the
dynamics an episode runs in labels that episode.

This is how multi-task policy distillation assigns its teachers (Rusu et al. 2016, "Policy Distillation": each game's
expert labels that game's data; Ghosh et al. 2018, "Divide-and-Conquer RL": each context's local policy labels its
context): the env knows its dynamics, the student does not and must infer them from what it observes (stacked frames
tell a weak push from a strong one). Averaging every teacher's advice on every state instead asks the student for a
compromise that none of the experts would play.

* :class:`RandomDynamics` draws a dynamics variant at every reset (CartPole's push force × 0.25, × 0.5, × 1...) and
  tells the teacher which one runs: the teacher's observation (``info["teacher_observation"]``, the channel of
  :class:`~sb3_distill.robustness.StudentObservation`) is the env's observation with the variant's index appended;
  the student's observation is the env's own.
* :class:`ExpertTeacher` is one teacher made of the experts, in the order of the variants: for every state it answers
  with the expert whose index the teacher's observation carries. DistillDQN, PolicyDistill and DistillPPO take it as
  any teacher; their buffers keep the teacher's observations, so every sample is labelled by its own expert.

The experts are trained on their variants by ``scripts/train_teachers.py --dynamics force_mag=0.25`` (rl-zoo3, the
zoo's hyperparameters, the env wrapped in :class:`~sb3_distill.robustness.ShiftDynamics`).
"""

import copy
import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.vec_env import VecEnv

from sb3_distill.common.teacher_observations import TEACHER_OBSERVATION_KEY, TEACHER_OBSERVATION_SPACE
from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.robustness.wrappers import check_dynamics, shift_dynamics, update_derived_constants
from sb3_distill.teachers import Teacher, load_teacher
from sb3_distill.teachers.spaces import same_space
from sb3_distill.teachers.teacher import ObsLike

#: Key of the index of the episode's dynamics variant in the env's ``info`` (reset and step).
DYNAMICS_KEY = "dynamics"


def _snapshot(env: gym.Env, parameters: set[str]) -> dict[str, Any]:
    """The current values of what the variants change (MuJoCo: copies of the model's arrays)."""
    unwrapped: Any = env.unwrapped
    if hasattr(unwrapped, "model") and hasattr(unwrapped.model, "body_mass"):
        model = unwrapped.model
        return {name: np.array(getattr(model, name)) for name in ("body_mass", "geom_friction", "actuator_gainprm")}
    return {name: getattr(unwrapped, name) for name in parameters}


def _restore(env: gym.Env, snapshot: dict[str, Any]) -> None:
    unwrapped: Any = env.unwrapped
    if hasattr(unwrapped, "model") and hasattr(unwrapped.model, "body_mass"):
        for name, value in snapshot.items():
            getattr(unwrapped.model, name)[...] = value
        return
    for name, value in snapshot.items():
        setattr(unwrapped, name, value)
    update_derived_constants(unwrapped)


class RandomDynamics(gym.Wrapper):
    """
    An env whose dynamics are drawn from ``variants`` at every reset, and whose teacher observation says which.

    The student observes the env's own observations; the teacher gets, in ``info["teacher_observation"]``, the
    observation with the index of the episode's variant appended (a float, ``0 .. len(variants) - 1``), in
    :attr:`teacher_observation_space`; ``info["dynamics"]`` holds the index too. An env below that already supplies
    teacher observations (e.g. a :class:`~sb3_distill.robustness.StudentObservation`) keeps them, with the index
    appended. A :class:`~sb3_distill.robustness.StudentObservation` put *on top* (hidden velocities, noise) changes
    what the student sees and leaves the teacher's view, index included, as it is.

    :param env: the env (classic control or MuJoCo: see :func:`~sb3_distill.robustness.shift_dynamics`); its
        observations must be vectors
    :param variants: the dynamics variants, each ``{parameter: factor}`` relative to the env's constants when the
        wrapper is made (``{}``: the nominal dynamics); e.g. ``[{"force_mag": 0.25}, {"force_mag": 0.5}, {}]``
    :param probabilities: the chance of each variant at a reset (default: uniform)
    :param seed: seed of the draws (reseeded by a seeded ``reset``)
    :param tell_teacher: ``False``: the dynamics change per episode and the teacher's observation is the env's own,
        without the index (domain randomization for teachers that are not experts of the variants: one robust
        teacher, or several averaged; frame stacking on top still stacks the student's view only);
        ``info["dynamics"]`` is still there
    """

    def __init__(
        self,
        env: gym.Env,
        variants: Sequence[Mapping[str, float]],
        probabilities: Sequence[float] | None = None,
        seed: int | None = None,
        tell_teacher: bool = True,
    ) -> None:
        super().__init__(env)
        self.variants = [dict(variant) for variant in variants]
        if not self.variants:
            raise ValueError("RandomDynamics needs at least one variant, e.g. [{'force_mag': 0.25}, {}].")
        for variant in self.variants:
            for parameter, factor in variant.items():
                check_dynamics(env, parameter)
                if not np.isfinite(factor) or factor <= 0:
                    raise ValueError(f"RandomDynamics: the factor of {parameter!r} must be > 0, not {factor}.")
        if probabilities is None:
            self.probabilities = np.full(len(self.variants), 1.0 / len(self.variants))
        else:
            weights = np.asarray(probabilities, dtype=np.float64)
            if weights.shape != (len(self.variants),) or not np.isfinite(weights).all() or (weights < 0).any():
                raise ValueError(
                    f"RandomDynamics: probabilities must be {len(self.variants)} finite numbers >= 0, one per variant, "
                    f"not {list(probabilities)}."
                )
            if weights.sum() == 0:
                raise ValueError("RandomDynamics: the probabilities are all zero.")
            self.probabilities = weights / weights.sum()
        self.tell_teacher = bool(tell_teacher)
        try:
            inner: spaces.Space = env.get_wrapper_attr(TEACHER_OBSERVATION_SPACE)
        except AttributeError:
            inner = env.observation_space
        self._inner_supplies = inner is not env.observation_space
        if self.tell_teacher:
            if not isinstance(inner, spaces.Box) or len(inner.shape) != 1:
                raise ValueError(
                    f"RandomDynamics appends the variant's index to the teacher's observation, which must be a vector "
                    f"(a 1-D Box), not {inner} (tell_teacher=False leaves the teacher's view as it is)."
                )
            inner = spaces.Box(
                np.append(inner.low, 0).astype(inner.dtype),
                np.append(inner.high, len(self.variants) - 1).astype(inner.dtype),
                dtype=inner.dtype,  # type: ignore[arg-type]
            )
        #: what the teacher observes: its observation with the variant's index appended (unless ``tell_teacher=False``)
        self.teacher_observation_space = inner
        self._nominal = _snapshot(env, {parameter for variant in self.variants for parameter in variant})
        self.rng = np.random.default_rng(seed)
        #: the index of the current episode's variant (``None`` before the first reset)
        self.variant: int | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.variant = int(self.rng.choice(len(self.variants), p=self.probabilities))
        _restore(self.env, self._nominal)
        for parameter, factor in self.variants[self.variant].items():
            shift_dynamics(self.env, parameter, factor)
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._with_teacher_observation(obs, info)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._with_teacher_observation(obs, info)

    def _with_teacher_observation(self, obs: Any, info: dict[str, Any]) -> dict[str, Any]:
        info = dict(info)
        info[DYNAMICS_KEY] = self.variant
        seen = info[TEACHER_OBSERVATION_KEY] if self._inner_supplies else obs
        if not self.tell_teacher:
            info[TEACHER_OBSERVATION_KEY] = np.array(seen, copy=True)
            return info
        space = self.teacher_observation_space
        assert isinstance(space, spaces.Box)
        index = float(self.variant if self.variant is not None else 0)
        info[TEACHER_OBSERVATION_KEY] = np.append(np.asarray(seen, dtype=space.dtype), index).astype(space.dtype)
        return info


class ExpertTeacher(Teacher):
    """
    One teacher made of several experts, each the expert of one dynamics variant: for every state it answers with the
    expert whose index the last entry of its observation carries (what :class:`RandomDynamics` gives the teacher).

    Every output a distillation loss takes (``q_values``, ``action_logits``, ``distribution``, ``actions``,
    ``values``) and ``predict()`` are the chosen expert's, state by state. The experts must act on the same spaces
    and be of the same kind (all DQN, all SAC...).

    :param experts: the experts (anything :func:`~sb3_distill.load_teacher` takes), in the order of the variants
    :param device: torch device of the experts' forward passes
    """

    def __init__(self, experts: Sequence[Any], device: th.device | str = "auto") -> None:
        if isinstance(experts, (str, Teacher)) or len(experts) == 0:
            raise ValueError("ExpertTeacher takes a list of experts, one per dynamics variant, in the variants' order.")
        loaded = [load_teacher(expert, device=device) for expert in experts]
        first = loaded[0]
        for expert in loaded[1:]:
            if not (
                same_space(expert.observation_space, first.observation_space)
                and same_space(expert.action_space, first.action_space)
            ):
                raise IncompatibleTeacherError(
                    f"The experts act on different spaces: {first!r} on {first.observation_space} -> {first.action_space}, "
                    f"{expert!r} on {expert.observation_space} -> {expert.action_space}."
                )
            squash = getattr(first.policy, "squash_output", None) == getattr(expert.policy, "squash_output", None)
            if expert.kind != first.kind or not squash:
                raise IncompatibleTeacherError(
                    f"The experts must be of one kind (their outputs are combined state by state): {first!r} is "
                    f"'{first.kind}', {expert!r} is '{expert.kind}'."
                )
        box = first.observation_space
        if not isinstance(box, spaces.Box) or len(box.shape) != 1:
            raise IncompatibleTeacherError(
                f"ExpertTeacher reads the expert's index from the last entry of a vector observation; the experts "
                f"observe {box}."
            )
        super().__init__(
            first.policy,
            algo=first.algo,
            env_id=first.env_id,
            source="",  # not a spec that load_teacher() can find again: a saved student asks for teacher=...
            device=first.device,
            config=first.config,
            env_kwargs=first.env_kwargs,
        )
        #: the experts, in the order of the dynamics variants
        self.experts = loaded
        self._observation_space = spaces.Box(
            np.append(box.low, 0).astype(box.dtype),
            np.append(box.high, len(loaded) - 1).astype(box.dtype),
            dtype=box.dtype,  # type: ignore[arg-type]
        )

    @property
    def observation_space(self) -> spaces.Space:
        """The experts' observation space with one entry more: the index of the expert."""
        return self._observation_space

    def __repr__(self) -> str:
        return f"ExpertTeacher({', '.join(map(repr, self.experts))})"

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of the experts' fingerprints, in order."""
        return hashlib.sha256("|".join(expert.fingerprint for expert in self.experts).encode()).hexdigest()

    def acting_network(self) -> th.nn.Module:
        """The experts' acting networks."""
        return th.nn.ModuleList([expert.acting_network() for expert in self.experts])

    def to(self, device: th.device | str) -> "ExpertTeacher":
        """
        :param device: torch device
        :return: this teacher, its experts moved to ``device``
        """
        for expert in self.experts:
            expert.to(device)
        super().to(device)
        return self

    # ------------------------------------------------------------------ routing
    def _split(self, obs: ObsLike) -> tuple[Any, np.ndarray]:
        """The experts' observations and each row's expert index."""
        if isinstance(obs, dict):
            raise IncompatibleTeacherError("ExpertTeacher takes vector observations ending with the expert's index.")
        values = obs.detach().cpu().numpy() if isinstance(obs, th.Tensor) else np.asarray(obs)
        if values.shape[-1:] != self._observation_space.shape:
            raise IncompatibleTeacherError(
                f"ExpertTeacher takes observations of shape {self._observation_space.shape} (the experts' "
                f"{self.experts[0].observation_space.shape} and the expert's index, as RandomDynamics gives the teacher), "
                f"not {values.shape[-1:]}."
            )
        index = np.rint(values[..., -1]).astype(np.int64)
        if ((index < 0) | (index >= len(self.experts)) | (np.abs(values[..., -1] - index) > 1e-3)).any():
            raise IncompatibleTeacherError(
                f"The last entry of the teacher's observation is the expert's index, 0 .. {len(self.experts) - 1}; got "
                f"{np.unique(values[..., -1])}: the variants of RandomDynamics and the experts must match one to one."
            )
        return obs[..., :-1], index

    def _route(self, outputs: list[th.Tensor], index: np.ndarray) -> th.Tensor:
        rows = th.arange(len(index), device=outputs[0].device)
        return th.stack(outputs)[th.as_tensor(index, device=outputs[0].device), rows]

    @th.no_grad()
    def q_values(self, obs: ObsLike) -> th.Tensor:
        states, index = self._split(obs)
        return self._route([expert.q_values(states) for expert in self.experts], index)

    @th.no_grad()
    def action_logits(self, obs: ObsLike) -> th.Tensor:
        states, index = self._split(obs)
        return self._route([expert.action_logits(states) for expert in self.experts], index)

    @th.no_grad()
    def actions(self, obs: ObsLike) -> th.Tensor:
        states, index = self._split(obs)
        return self._route([expert.actions(states) for expert in self.experts], index)

    @th.no_grad()
    def values(self, obs: ObsLike, temperature: float | None = None) -> th.Tensor:
        states, index = self._split(obs)
        return self._route([expert.values(states, temperature) for expert in self.experts], index)

    @th.no_grad()
    def distribution(self, obs: ObsLike, temperature: float = 1.0) -> Distribution:
        states, index = self._split(obs)
        parts = [expert.distribution(states, temperature) for expert in self.experts]
        inner: list[Any] = [part.distribution for part in parts]
        routed = copy.copy(parts[0])
        if isinstance(inner[0], th.distributions.Categorical):
            routed.distribution = th.distributions.Categorical(logits=self._route([d.logits for d in inner], index))
        else:  # the diagonal Gaussians of PPO / SAC (pre-tanh for squashing ones)
            routed.distribution = th.distributions.Normal(
                self._route([d.loc for d in inner], index), self._route([d.scale for d in inner], index)
            )
        if hasattr(routed, "gaussian_actions"):
            routed.gaussian_actions = None
        return routed

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        SB3's ``predict()``: each row's expert acts on it.

        :param observation: the teacher's raw observation(s), ending with the expert's index
        :param state: unused
        :param episode_start: unused
        :param deterministic: whether to take the greedy / mean action
        :return: the action(s) and ``None``
        """
        states, index = self._split(observation)  # type: ignore[arg-type]
        single = np.ndim(index) == 0
        states, index = np.atleast_2d(states), np.atleast_1d(index)
        actions = np.stack([expert.predict(states, deterministic=deterministic)[0] for expert in self.experts])
        chosen = actions[index, np.arange(len(index))]
        return (chosen[0] if single else chosen), None

    # ------------------------------------------------------------------ its env
    def make_env(
        self, n_envs: int = 1, seed: int | None = None, vec_env_cls: type[VecEnv] | None = None, **env_kwargs: Any
    ) -> VecEnv:
        raise IncompatibleTeacherError(
            "An ExpertTeacher acts in an env that tells it the expert of each episode: wrap the env in "
            "sb3_distill.robustness.RandomDynamics(env, variants), with one variant per expert, in the same order."
        )

    def reference_returns(self, env_id: str | None = None, n_episodes: int = 10, seed: int = 0) -> tuple[float, float]:
        raise IncompatibleTeacherError(
            "An ExpertTeacher's return depends on the variants' env (RandomDynamics), not on an env id: the students "
            "measure it in their own env when it is wrapped in RandomDynamics, or pass reference_returns=(random, teacher)."
        )


__all__ = ["DYNAMICS_KEY", "ExpertTeacher", "RandomDynamics"]
