"""
The teacher-observation seam: what the teacher sees when the env supplies teacher observations
(``info["teacher_observation"]``, ``teacher_observation_space``), for DistillDQN, PolicyDistill and DistillPPO.

The env of these tests is CartPole whose student sees ``2 · obs[:3]`` (one column dropped, the rest scaled), while
the teacher (the bundled CartPole DQN, on 4 columns) must see the env's own observations.
"""

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sb3_distill import DistillDQN, DistillPPO, PolicyDistill, Teacher, load_teacher
from sb3_distill.common.teacher_observations import TEACHER_OBSERVATION_KEY, env_teacher_observation_space
from sb3_distill.errors import IncompatibleTeacherError

SMALL = dict(learning_starts=50, buffer_size=1_000, policy_kwargs=dict(net_arch=[16]), seed=0)
#: Every observation the env produced (rows as bytes), and every observation a teacher was given.
PRODUCED: set[bytes] = set()
SEEN: list[np.ndarray] = []


class DictReplayBufferOfMine(ReplayBuffer):
    """A custom buffer (not a teacher buffer): it cannot keep what the teacher sees."""


def _student(obs: np.ndarray) -> np.ndarray:
    return (2 * np.asarray(obs)[..., :3]).astype(np.float32)


class PrivilegedCartPole(gym.Wrapper):
    """
    The student sees ``2 · obs[:3]``, the teacher the env's own ``obs`` (the seam's contract, as ``StudentObservation``).

    :param env: CartPole
    :param missing_after: leave the key out of the step infos after this many steps (a broken wrapper)
    :param teacher_shape: the shape of what the wrapper gives the teacher (another than the space: a broken wrapper)
    """

    def __init__(self, env: gym.Env, missing_after: int | None = None, teacher_shape: int = 4) -> None:
        super().__init__(env)
        self.teacher_observation_space = env.observation_space
        self.observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
        self.missing_after = missing_after
        self.teacher_shape = teacher_shape
        self.steps = 0

    def _teacher(self, obs: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
        PRODUCED.add(np.asarray(obs, dtype=np.float32).tobytes())
        if self.missing_after is not None and self.steps > self.missing_after:
            return info
        return {**info, TEACHER_OBSERVATION_KEY: np.array(obs[: self.teacher_shape])}

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return _student(obs), self._teacher(obs, info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return _student(obs), float(reward), terminated, truncated, self._teacher(obs, info)


def _env(n_envs: int = 2, normalize: bool = True, **wrapper: Any) -> VecEnv:
    env = make_vec_env(
        "CartPole-v1",
        n_envs=n_envs,
        seed=0,
        wrapper_class=PrivilegedCartPole,
        wrapper_kwargs=wrapper,
        env_kwargs=dict(max_episode_steps=40),  # short episodes: many auto-resets and terminal observations
    )
    return VecNormalize(env, norm_reward=False) if normalize else env


@pytest.fixture(scope="module")
def teacher() -> Teacher:
    return load_teacher("dqn/CartPole-v1")


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[np.ndarray]]:
    """Records every observation batch a teacher is given (its forward passes and its predict())."""
    PRODUCED.clear()
    SEEN.clear()
    to_tensor, predict = Teacher.obs_to_tensor, Teacher.predict

    def seen(obs: Any) -> None:
        SEEN.append(obs.cpu().numpy() if isinstance(obs, th.Tensor) else np.asarray(obs))

    monkeypatch.setattr(Teacher, "obs_to_tensor", lambda self, obs: (seen(obs), to_tensor(self, obs))[1])
    monkeypatch.setattr(Teacher, "predict", lambda self, obs, *a, **k: (seen(obs), predict(self, obs, *a, **k))[1])
    yield SEEN


def _assert_teacher_saw_only_the_envs_observations(seen: list[np.ndarray]) -> None:
    rows = np.concatenate([batch.reshape(-1, 4) for batch in seen]).astype(np.float32)
    assert len(rows) > 100
    foreign = [row for row in rows if row.tobytes() not in PRODUCED]
    assert not foreign, f"the teacher was given {len(foreign)} observations the env never produced, e.g. {foreign[0]}"


def _assert_pairs(student_obs: th.Tensor, teacher_obs: th.Tensor, vec_normalize: VecNormalize) -> None:
    """Each teacher row is the env's own observation of the student row beside it."""
    expected = vec_normalize.normalize_obs(_student(teacher_obs.cpu().numpy()))
    np.testing.assert_allclose(student_obs.cpu().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_distill_dqn_teacher_sees_the_envs_observations(teacher: Teacher, spy: list[np.ndarray]) -> None:
    env = _env()
    assert env_teacher_observation_space(env).shape == (4,)  # found through VecNormalize and Monitor
    model = DistillDQN(
        "MlpPolicy",
        env,
        teacher=teacher,
        recipe="policy_distillation",
        n_steps=3,  # s' of a sample is s_{t+k}, k where the n-step return stops (first done within 3 steps)
        teacher_rollout_steps=100,  # the teacher also acts (on what it sees)
        **SMALL,
    )
    model.learn(300)
    _assert_teacher_saw_only_the_envs_observations(spy)
    buffer = model.replay_buffer
    assert buffer.teacher_observations is not None and buffer.n_pending == 0
    samples = buffer.sample(256, env=env)
    _assert_pairs(samples.observations, samples.teacher_observations, env)
    _assert_pairs(samples.next_observations, samples.teacher_next_observations, env)
    th.testing.assert_close(samples.teacher_logits, teacher.action_logits(samples.teacher_observations))


def test_policy_distill_teacher_sees_the_envs_observations(teacher: Teacher, spy: list[np.ndarray]) -> None:
    env = _env()
    model = PolicyDistill(
        "MlpPolicy",
        env,
        teacher=teacher,
        data_policy=0.5,  # the teacher acts on half the steps
        gradient_steps=1,
        **SMALL,
    )
    model.learn(300)
    _assert_teacher_saw_only_the_envs_observations(spy)
    samples = model.replay_buffer.sample(256, env=env)
    _assert_pairs(samples.observations, samples.teacher_observations, env)
    th.testing.assert_close(samples.teacher_outputs["0/logits"], teacher.action_logits(samples.teacher_observations))


def test_distill_ppo_teacher_sees_the_envs_observations(teacher: Teacher, spy: list[np.ndarray]) -> None:
    env = _env()
    env.training = False  # fixed statistics, so that each stored (normalized) observation can be checked
    env.obs_rms.mean, env.obs_rms.var = np.array([0.1, -0.2, 0.05]), np.array([4.0, 9.0, 0.25])
    model = DistillPPO("MlpPolicy", env, teacher=teacher, distill_coef=1.0, n_steps=64, batch_size=32, n_epochs=2, seed=0)
    model.learn(256)
    _assert_teacher_saw_only_the_envs_observations(spy)
    buffer = model.rollout_buffer
    _assert_pairs(th.as_tensor(buffer.observations.reshape(-1, 3)), buffer.rollout_teacher_observations(), env)


def test_without_the_channel_the_teacher_does_not_fit(teacher: Teacher) -> None:
    class StudentOnly(PrivilegedCartPole):
        def __init__(self, env: gym.Env) -> None:
            super().__init__(env)
            del self.teacher_observation_space

    env = make_vec_env("CartPole-v1", n_envs=1, seed=0, wrapper_class=StudentOnly)
    assert env_teacher_observation_space(env) is None
    with pytest.raises(IncompatibleTeacherError, match="does not fit this env"):
        DistillDQN("MlpPolicy", env, teacher=teacher)


def test_a_broken_channel_is_a_clear_error(teacher: Teacher) -> None:
    kwargs = dict(teacher=teacher, learning_starts=10, policy_kwargs=dict(net_arch=[8]), seed=0)
    model = DistillDQN("MlpPolicy", _env(missing_after=20), recipe="policy_distillation", **kwargs)
    with pytest.raises(IncompatibleTeacherError, match="has no 'teacher_observation'"):
        model.learn(100)
    model = PolicyDistill("MlpPolicy", _env(teacher_shape=2), **kwargs)
    with pytest.raises(IncompatibleTeacherError, match=r"\(shape \(2,\)\) does not fit the env's teacher_observation_space"):
        model.learn(100)
    with pytest.raises(ValueError, match="keeps only the student's observations"):
        DistillDQN("MlpPolicy", _env(normalize=False), replay_buffer_class=ReplayBuffer, **kwargs)
    with pytest.raises(ValueError, match="keeps only the student's observations"):
        PolicyDistill("MlpPolicy", _env(normalize=False), replay_buffer_class=DictReplayBufferOfMine, **kwargs)


def test_online_distillation_refuses_teacher_observations(teacher: Teacher) -> None:
    from stable_baselines3 import PPO

    from sb3_distill.policy_distill import OnlineDistillCallback

    student = PolicyDistill("MlpPolicy", _env(normalize=False), teacher=teacher, learning_starts=10, seed=0)
    learning = PPO("MlpPolicy", _env(normalize=False), n_steps=16, batch_size=16, seed=0)
    with pytest.raises(IncompatibleTeacherError, match="online distillation does not record"):
        learning.learn(32, callback=OnlineDistillCallback(student))
