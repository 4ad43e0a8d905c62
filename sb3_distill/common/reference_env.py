"""
Where a teacher's reference returns are measured: in the student's own env when it is not the registered one.

QDagger's rule and the ``"auto"`` choices (DistillDQN's ``recipe``, DistillPPO's ``distill_coef``) judge the teacher by
its mean return. Measured on the student's env id as gymnasium registers it, that return says nothing about an env
the student trains in that differs from it: CartPole with a weaker push (a dynamics shift made in place,
``sb3_distill.robustness.shift_dynamics``), LunarLander with wind (a make keyword), an action-noise wrapper. The bundled
CartPole teacher plays 500 on the registered CartPole-v1 and 19.7 with the push force × 0.25, where a random policy
plays 32.7: judged on the registered env it "solves" the student's env, and the student is pinned to it.

:func:`shifted_student_env` finds out, cheaply, whether the student's env behaves as the registered one: a **copy**
of the student's first env (every gym wrapper and every change made in place; a deep copy, so that the student's env
is not touched; Box2D envs, whose SWIG objects do not copy, and envs in other processes are rebuilt from their spec
instead: id and make keywords) and the registered env (``gym.make(id)``) are reset with the same seed and stepped with
the same seeded random actions for :data:`PROBE_STEPS` steps; where the teacher's view of the observations (the
env's teacher observations if it supplies them, e.g. ``StudentObservation``: a noisy or partial student view does not
change what the teacher sees), the rewards or the episode ends differ, the student's env is shifted, and the copy is
where the teacher is measured (:class:`TeacherView` gives the teacher its own observations there). These episodes
run on the copy, not the student's env, and are not counted as training steps, but in the real world they would be
episodes of the real system: :class:`ReferenceMeasurement` counts them.
"""

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_distill.common.teacher_observations import TEACHER_OBSERVATION_KEY, TEACHER_OBSERVATION_SPACE

#: Seeded random-action steps on which the student's env and the registered one are compared.
PROBE_STEPS = 64


@dataclass
class ReferenceMeasurement:
    """Where a model's reference returns come from (``TeacherMixin.reference_measurement``, not saved)."""

    #: ``"given"`` (``reference_returns=``), ``"registered"`` (the env id as gymnasium registers it) or
    #: ``"student_env"`` (a copy of the student's own env, which differs from the registered one)
    where: str
    #: a sentence for the choices' explanations (``recipe_choice``, ``distill_coef_choice``)
    note: str
    #: env steps the measurement played in the student's env (0 unless ``where == "student_env"``)
    env_steps: int = 0


class TeacherView(gym.Wrapper):
    """
    A copy of the student's env as the teacher sees it: observations are the env's teacher observations
    (``info[TEACHER_OBSERVATION_KEY]``), in the env's ``teacher_observation_space``.

    :param env: an env that supplies teacher observations (e.g. one wrapped in ``StudentObservation``)
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = env.get_wrapper_attr(TEACHER_OBSERVATION_SPACE)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        _, info = self.env.reset(seed=seed, options=options)
        return info[TEACHER_OBSERVATION_KEY], info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        _, reward, terminated, truncated, info = self.env.step(action)
        return info[TEACHER_OBSERVATION_KEY], reward, terminated, truncated, info


def _supplies_teacher_observations(env: gym.Env) -> bool:
    try:
        env.get_wrapper_attr(TEACHER_OBSERVATION_SPACE)
    except AttributeError:
        return False
    return True


def _is_box2d(env: gym.Env) -> bool:
    # Box2D's SWIG objects "deep-copy" into a broken env (LunarLander's copy has no lander), so these are rebuilt
    return any(type(value).__module__.split(".")[0] == "Box2D" for value in vars(env.unwrapped).values())


def _copy_student_env(venv: VecEnv) -> gym.Env | None:
    """A fresh copy of the student's first env: a deep copy where possible, else rebuilt from its spec."""
    envs = getattr(venv.unwrapped, "envs", None)
    if envs and not _is_box2d(envs[0]):
        try:
            return copy.deepcopy(envs[0])
        except Exception:  # an env holding a file, a window, a lock... falls back to its spec
            pass
    spec = venv.get_attr("spec", indices=[0])[0]
    if spec is None or spec.id not in gym.registry:
        return None
    kwargs = {key: value for key, value in spec.kwargs.items() if key != "render_mode"}
    return gym.make(spec.id, max_episode_steps=spec.max_episode_steps, **kwargs)


def _teacher_side(env: gym.Env) -> gym.Env:
    return TeacherView(env) if _supplies_teacher_observations(env) else env


def _probe(env: gym.Env, steps: int, seed: int) -> list[Any]:
    """What ``env`` does under seeded random actions: observations, rewards, episode ends."""
    env.action_space.seed(seed)
    trace: list[Any] = []
    obs, _ = env.reset(seed=seed)
    trace.append(np.asarray(obs, dtype=float))
    for step in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trace.append((np.asarray(obs, dtype=float), float(reward), bool(terminated), bool(truncated)))
        if terminated or truncated:
            obs, _ = env.reset(seed=seed + step + 1)
            trace.append(np.asarray(obs, dtype=float))
    return trace


def _same_trace(first: list[Any], second: list[Any]) -> bool:
    def flat(trace: list[Any]) -> list[Any]:
        return [part for item in trace for part in (item if isinstance(item, tuple) else (item,))]

    return all(
        np.shape(a) == np.shape(b) and np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(flat(first), flat(second), strict=True)
    ) and len(first) == len(second)


def shifted_student_env(venv: VecEnv | None, teacher_space: spaces.Space, seed: int = 0) -> gym.Env | None:
    """
    The student's env as the teacher sees it, if it behaves differently from its registered env id.

    :param venv: the student's env
    :param teacher_space: the teachers' observation space (a copy whose teacher view does not fit it is not used)
    :param seed: seed of the probe
    :return: a fresh copy of the student's first env, as the teacher sees it (``Monitor``-wrapped), where the teacher's
        reference returns belong; ``None`` when the student's env is the registered one (as far as
        :data:`PROBE_STEPS` seeded steps tell), has no registered id, or cannot be copied or probed
    """
    if venv is None:
        return None
    spec = venv.get_attr("spec", indices=[0])[0]
    if spec is None or spec.id not in gym.registry:
        return None
    probe_copy = _copy_student_env(venv)
    if probe_copy is None:
        return None
    probe_copy = _teacher_side(probe_copy)
    if probe_copy.observation_space.shape != teacher_space.shape:
        return None
    registered = gym.make(spec.id)
    try:
        same = _same_trace(_probe(probe_copy, PROBE_STEPS, seed), _probe(registered, PROBE_STEPS, seed))
    except Exception:  # an env that cannot be stepped this way (an action space that does not sample...)
        return None
    finally:
        registered.close()
        probe_copy.close()
    student_side = None if same else _copy_student_env(venv)  # a fresh copy: the probed one has played
    if student_side is None:
        return None
    teacher_side = _teacher_side(student_side)
    return teacher_side if is_wrapped(teacher_side, Monitor) else Monitor(teacher_side)


def as_vec_env(env: gym.Env) -> VecEnv:
    """:param env: a gym env :return: it in a one-env ``DummyVecEnv`` (what ``reference_returns`` plays on)"""
    return DummyVecEnv([lambda: env])


__all__ = ["PROBE_STEPS", "ReferenceMeasurement", "TeacherView", "as_vec_env", "shifted_student_env"]
