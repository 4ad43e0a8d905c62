"""
What the teacher sees: the one source of the teacher's observations, for DistillDQN, PolicyDistill and DistillPPO.

A teacher acts on its own observations, which are not always the student's:

* by default the env's *original* observations: a ``VecNormalize``-wrapped student sees normalized observations, the
  teacher the un-normalized ones (``VecNormalize.get_original_obs()``, and the un-normalized
  ``terminal_observation``); it normalizes them with its own statistics;
* when the env supplies them, *teacher observations*: an env (e.g. ``sb3_distill.robustness.StudentObservation``)
  that puts the teacher's view of every observation it returns into ``info[TEACHER_OBSERVATION_KEY]`` (reset info
  and step info; in a step that ends an episode, the teacher's view of the terminal observation; after a VecEnv
  auto-reset, the teacher's view of the new first observation is in ``reset_infos[i][TEACHER_OBSERVATION_KEY]``)
  and has an attribute ``teacher_observation_space`` (reachable with ``VecEnv.get_attr``, through ``Monitor``,
  ``VecNormalize``, ``VecFrameStack``). The teachers are then checked against that space, not the student's.

:class:`TeacherObservations` follows one ``VecEnv`` step by step (the algorithms call :meth:`~TeacherObservations.reset`
after ``env.reset()`` and :meth:`~TeacherObservations.step` after each ``env.step()``, from SB3's
``_update_info_buffer`` hook, before the transition is stored): ``current`` is the teacher's view of the student's
last observation (what a teacher acts on), and each step leaves a :class:`TeacherTransition` (the teacher's view of
the transition's observation and next observation) that the buffers of :mod:`sb3_distill.common.buffers` take at
insertion time.
"""

from typing import Any, Literal, NamedTuple

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, unwrap_vec_normalize

from sb3_distill.common.obs import NumpyObs
from sb3_distill.errors import IncompatibleTeacherError

#: Key of the teacher's observation in the env's ``info`` / ``reset_infos`` dicts.
TEACHER_OBSERVATION_KEY = "teacher_observation"
#: Attribute of an env that supplies teacher observations: their space.
TEACHER_OBSERVATION_SPACE = "teacher_observation_space"

#: ``"student"``: the teacher sees the student's own observations; ``"original"``: VecNormalize's un-normalized ones;
#: ``"env"``: the env's ``info[TEACHER_OBSERVATION_KEY]``.
Source = Literal["student", "original", "env"]


class TeacherTransition(NamedTuple):
    """The teacher's view of one env step of every env (arrays of shape (n_envs, ...))."""

    #: what the teacher sees of the transition's observation s
    observations: NumpyObs
    #: what it sees of s' (of the terminal observation where the episode ended)
    next_observations: NumpyObs


def env_teacher_observation_space(env: VecEnv | None) -> spaces.Space | None:
    """
    :param env: a VecEnv (any wrappers), or ``None``
    :return: its ``teacher_observation_space`` if it supplies teacher observations, else ``None``
    """
    if env is None or not env.has_attr(TEACHER_OBSERVATION_SPACE):
        return None
    return env.get_attr(TEACHER_OBSERVATION_SPACE, indices=[0])[0]


def teacher_observation_space(env: VecEnv | None, observation_space: spaces.Space) -> spaces.Space:
    """
    :param env: the student's env, or ``None``
    :param observation_space: the student's observation space
    :return: the space the teacher's observations live in (the env's ``teacher_observation_space``, else the
        student's)
    """
    supplied = env_teacher_observation_space(env)
    return observation_space if supplied is None else supplied


def _copy(obs: NumpyObs) -> NumpyObs:
    return {key: np.array(value) for key, value in obs.items()} if isinstance(obs, dict) else np.array(obs)


def _set_row(store: NumpyObs, index: int, value: Any) -> None:
    if isinstance(store, dict):
        for key in store:
            store[key][index] = value[key]
    else:
        store[index] = value


def _stack(values: list[Any]) -> NumpyObs:
    if isinstance(values[0], dict):
        return {key: np.stack([np.asarray(value[key]) for value in values]) for key in values[0]}
    return np.stack([np.asarray(value) for value in values])


class TeacherObservations:
    """
    The teacher's view of a ``VecEnv``'s observations, followed step by step.

    :param env: the student's env (any wrappers)
    """

    def __init__(self, env: VecEnv) -> None:
        self.env = env
        self.vec_normalize: VecNormalize | None = unwrap_vec_normalize(env)
        #: the env's ``teacher_observation_space``, or ``None`` if the env supplies no teacher observations
        self.space = env_teacher_observation_space(env)
        self.source: Source
        if self.space is not None:
            self.source = "env"
        elif self.vec_normalize is not None and self.vec_normalize.norm_obs:
            self.source = "original"
        else:
            self.source = "student"
        #: the teacher's view of the student's last observation (``None`` for ``source="student"``: it is the student's)
        self.current: NumpyObs | None = None
        self._transition: TeacherTransition | None = None

    # ------------------------------------------------------------------ following the env
    def reset(self, obs: NumpyObs) -> None:
        """
        Call right after ``env.reset()``.

        :param obs: what ``env.reset()`` returned
        """
        self._transition = None
        if self.source == "env":
            infos = self.env.unwrapped.reset_infos
            self.current = _stack([self._from_info(info, index, "reset") for index, info in enumerate(infos)])
        elif self.source == "original":
            assert self.vec_normalize is not None
            self.current = _copy(self.vec_normalize.get_original_obs())
        else:
            self.current = None

    def step(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """
        Call right after ``env.step()`` (SB3's ``_update_info_buffer`` hook): records the step's
        :class:`TeacherTransition` (taken by the buffer with :meth:`take_transition`) and moves ``current`` on.

        :param dones: what ``env.step()`` returned
        :param infos: what ``env.step()`` returned
        """
        if self.source == "student":
            return
        if self.current is None:
            raise RuntimeError("TeacherObservations.step() before reset(): call reset() with the env's first observation.")
        if self.source == "env":
            # The teacher's view of s' (of the terminal observation where an episode ended) ...
            next_obs = _stack([self._from_info(info, index, "step") for index, info in enumerate(infos)])
            new_current = _copy(next_obs)
            # ... and, after the VecEnv's auto-reset, of the next episode's first observation.
            reset_infos = self.env.unwrapped.reset_infos
            for index, done in enumerate(dones):
                if done:
                    _set_row(new_current, index, self._from_info(reset_infos[index], index, "reset"))
        else:
            assert self.vec_normalize is not None
            new_current = _copy(self.vec_normalize.get_original_obs())
            next_obs = _copy(new_current)
            for index, done in enumerate(dones):
                terminal = infos[index].get("terminal_observation") if done else None
                if terminal is not None:  # VecNormalize normalizes the terminal observation too
                    _set_row(next_obs, index, self.vec_normalize.unnormalize_obs(terminal))
        self._transition = TeacherTransition(self.current, next_obs)
        self.current = new_current

    def take_transition(self) -> TeacherTransition | None:
        """
        :return: the teacher's view of the last step (once: a second call returns ``None``), or ``None``
        """
        transition, self._transition = self._transition, None
        return transition

    def _from_info(self, info: dict[str, Any], index: int, when: str) -> Any:
        if TEACHER_OBSERVATION_KEY not in info:
            where = "reset_infos" if when == "reset" else "the step's info"
            raise IncompatibleTeacherError(
                f"The env has a {TEACHER_OBSERVATION_SPACE} but env {index}'s {where} has no {TEACHER_OBSERVATION_KEY!r}: "
                f"an env that supplies teacher observations must put one in every reset and step info "
                "(sb3_distill.robustness.StudentObservation does)."
            )
        value = info[TEACHER_OBSERVATION_KEY]
        assert self.space is not None
        if not _fits(self.space, value):
            raise IncompatibleTeacherError(
                f"info[{TEACHER_OBSERVATION_KEY!r}] of env {index} ({_describe(value)}) does not fit the env's "
                f"{TEACHER_OBSERVATION_SPACE} {self.space}: the wrapper must give the teacher's observation as that space."
            )
        return value


def _fits(space: spaces.Space, value: Any) -> bool:
    if isinstance(space, spaces.Dict):
        return (
            isinstance(value, dict)
            and set(value) == set(space.spaces)
            and all(_fits(sub, value[key]) for key, sub in space.spaces.items())
        )
    if isinstance(space, spaces.Discrete):
        return np.asarray(value).size == 1
    return space.shape is None or np.shape(value) == space.shape


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a dict with keys " + ", ".join(map(str, value))
    return f"shape {np.shape(value)}"


__all__ = [
    "TEACHER_OBSERVATION_KEY",
    "TEACHER_OBSERVATION_SPACE",
    "TeacherObservations",
    "TeacherTransition",
    "env_teacher_observation_space",
    "teacher_observation_space",
]
