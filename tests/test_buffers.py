"""The replay buffers that cache teacher outputs: same values as the teacher, never stale, DistillDQN's default."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env

from sb3_distill import DistillDQN, Teacher, load_teacher
from sb3_distill.common.buffers import TeacherNStepReplayBuffer, TeacherReplayBuffer
from sb3_distill.common.sampling import sample_student_teacher

TINY = dict(learning_starts=50, buffer_size=500, batch_size=32, policy_kwargs=dict(net_arch=[16]), seed=0)


@pytest.fixture(scope="module")
def teacher() -> Teacher:
    return load_teacher("dqn/CartPole-v1")


@pytest.mark.parametrize("n_envs", [1, 2])
@pytest.mark.parametrize("recipe", ["qdagger", "seed"])
def test_cached_outputs_are_the_teachers(teacher: Teacher, n_envs: int, recipe: str) -> None:
    model = DistillDQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=n_envs, seed=0), teacher=teacher, recipe=recipe, **TINY)
    model.learn(400)
    buffer = model.replay_buffer
    assert isinstance(buffer, TeacherReplayBuffer) and model.replay_buffer_class is TeacherReplayBuffer
    buffer.update_teacher_outputs(teacher, next_q=recipe == "seed")
    for _ in range(3):  # several draws: with 2 envs the env index of each sample is random
        samples = buffer.sample(64)
        assert samples.teacher_logits is not None
        th.testing.assert_close(samples.teacher_logits, teacher.action_logits(samples.observations), rtol=1e-5, atol=1e-5)
        if recipe == "seed":
            assert samples.teacher_next_q is not None
            th.testing.assert_close(samples.teacher_next_q, teacher.q_values(samples.next_observations), rtol=1e-5, atol=1e-5)
        else:
            assert samples.teacher_next_q is None


def test_nstep_buffer_caches_logits_only(teacher: Teacher) -> None:
    model = DistillDQN("MlpPolicy", "CartPole-v1", teacher=teacher, recipe="seed", n_steps=3, **TINY)
    assert isinstance(model.replay_buffer, TeacherNStepReplayBuffer)
    model.learn(300)
    model.replay_buffer.update_teacher_outputs(teacher, next_q=True)
    samples = model.replay_buffer.sample(32)
    assert samples.discounts is not None and samples.teacher_next_q is None
    th.testing.assert_close(samples.teacher_logits, teacher.q_values(samples.observations), rtol=1e-5, atol=1e-5)
    # The teacher TD target then comes from a live pass on the n-step next state.
    batch = sample_student_teacher(model.replay_buffer, 32, None)
    _, next_q = model._teacher_outputs(batch)
    th.testing.assert_close(next_q, teacher.q_values(batch.teacher_next_obs))


def test_stale_rows_are_never_served(teacher: Teacher) -> None:
    model = DistillDQN("MlpPolicy", "CartPole-v1", teacher=teacher, **TINY)
    model.learn(200)
    buffer = model.replay_buffer
    buffer.update_teacher_outputs(teacher)
    assert buffer.sample(8).teacher_logits is not None
    obs = np.zeros((1, 4), dtype=np.float32)
    buffer.add(obs, obs, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    assert buffer.n_pending == 1 and buffer.sample(8).teacher_logits is None
    assert buffer.update_teacher_outputs(teacher) == 1 and buffer.n_pending == 0
    # Another teacher (or asking for s' too) recomputes everything.
    other = load_teacher("dqn/CartPole-v1")
    assert buffer.update_teacher_outputs(other) == buffer.size()
    assert buffer.update_teacher_outputs(other, next_q=True) == buffer.size()


def test_cache_matches_live_teacher_in_train(teacher: Teacher) -> None:
    model = DistillDQN("MlpPolicy", "CartPole-v1", teacher=teacher, recipe="seed", **TINY)
    model.learn(200)
    model.replay_buffer.update_teacher_outputs(teacher, next_q=True)
    batch = sample_student_teacher(model.replay_buffer, 64, None)
    cached = model._teacher_outputs(batch)
    live = model._teacher_outputs(batch._replace(student=batch.student._replace(teacher_logits=None, teacher_next_q=None)))
    for got, expected in zip(cached, live, strict=True):
        th.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_buffer_choice_and_save_load(teacher: Teacher, tmp_path: Path) -> None:
    assert (
        type(DistillDQN("MlpPolicy", "CartPole-v1", teacher=teacher, cache_teacher_outputs=False).replay_buffer)
        is ReplayBuffer
    )
    memory_saving = DistillDQN(
        "MlpPolicy",
        "CartPole-v1",
        teacher=teacher,
        optimize_memory_usage=True,
        replay_buffer_kwargs=dict(handle_timeout_termination=False),
    )
    assert type(memory_saving.replay_buffer) is ReplayBuffer
    model = DistillDQN("MlpPolicy", "CartPole-v1", teacher=teacher, n_steps=3, **TINY)
    model.learn(200)
    model.save(tmp_path / "student")
    model.save_replay_buffer(tmp_path / "buffer")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "n_steps is ignored because a custom replay_buffer_class" warning
        loaded = DistillDQN.load(tmp_path / "student", env=make_vec_env("CartPole-v1"), teacher=teacher)
    assert isinstance(loaded.replay_buffer, TeacherNStepReplayBuffer) and loaded.replay_buffer.n_steps == 3
    loaded.load_replay_buffer(tmp_path / "buffer")
    buffer = loaded.replay_buffer
    assert buffer.teacher_logits is None and buffer.n_pending == buffer.size() == 200
    loaded.learn(100, reset_num_timesteps=False)
    assert buffer.n_pending == 0
