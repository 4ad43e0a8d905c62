"""The replay buffers that keep what the teacher sees and cache its outputs: SB3's samples, the teacher's values."""

import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill import DistillDQN, PolicyDistill, Teacher, load_teacher
from sb3_distill.common.buffers import TeacherCacheMixin, TeacherNStepReplayBuffer, TeacherReplayBuffer

TINY = dict(learning_starts=50, buffer_size=500, batch_size=32, policy_kwargs=dict(net_arch=[16]), seed=0)


@pytest.fixture(scope="module")
def teacher() -> Teacher:
    return load_teacher("dqn/CartPole-v1")


@pytest.mark.parametrize("n_envs", [1, 3])
@pytest.mark.parametrize("n_steps", [1, 3])
@pytest.mark.parametrize("normalize", [False, True])
def test_samples_carry_the_teachers_rows(teacher: Teacher, n_envs: int, n_steps: int, normalize: bool) -> None:
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=0)
    if normalize:
        env = VecNormalize(env, norm_reward=False)
    model = DistillDQN("MlpPolicy", env, teacher=teacher, n_steps=n_steps, **TINY)
    model.learn(400)
    buffer = model.replay_buffer
    assert isinstance(buffer, TeacherNStepReplayBuffer if n_steps > 1 else TeacherReplayBuffer)
    buffer.update_teacher_outputs(teacher)
    vec_normalize = model.get_vec_normalize_env()
    for _ in range(3):  # several draws: with several envs the env index of each sample is random
        state = np.random.get_state()
        samples = buffer.sample(64, env=vec_normalize)
        # The student's fields are exactly SB3's sample (same RNG draws, same normalization).
        np.random.set_state(state)
        reference = ReplayBuffer.sample(buffer, 64, env=vec_normalize) if n_steps == 1 else None
        if reference is not None:
            for got, expected in zip(samples[:5], reference[:5], strict=True):
                assert th.equal(got, expected)
        # The teacher's fields are the raw rows of those samples, and its logits on them.
        to_student = (lambda obs: th.as_tensor(vec_normalize.normalize_obs(obs.numpy()))) if normalize else (lambda obs: obs)
        assert th.equal(to_student(samples.teacher_observations), samples.observations)
        assert th.equal(to_student(samples.teacher_next_observations), samples.next_observations)
        th.testing.assert_close(
            samples.teacher_logits, teacher.action_logits(samples.teacher_observations), rtol=1e-5, atol=1e-5
        )


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
    # Another teacher (other weights) recomputes everything.
    other = load_teacher("dqn/CartPole-v1@weak")
    assert buffer.update_teacher_outputs(other) == buffer.size()


@pytest.mark.parametrize("added", [7, 10, 23])  # not full, just full, wrapped around
def test_a_batch_holds_a_pending_row_exactly_when_one_of_its_rows_is_pending(added: int) -> None:
    """The lazy update's test of a batch (one comparison with the largest row while the buffer is not full) against
    the set of pending rows: the last ``n_pending`` added."""
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    buffer = TeacherReplayBuffer(10, space, gym.spaces.Discrete(2), device="cpu")
    obs = np.zeros((1, 2), dtype=np.float32)
    for _ in range(added):
        buffer.add(obs, obs, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    rng = np.random.default_rng(0)
    for n_pending in range(buffer.size() + 1):
        buffer._n_pending = n_pending
        pending = {(buffer.pos - 1 - k) % buffer.buffer_size for k in range(n_pending)}
        for _ in range(50):
            rows = rng.integers(0, buffer.size(), size=int(rng.integers(1, 4)))
            assert buffer._holds_pending(rows) == bool(pending & set(rows.tolist()))


def test_without_cache_the_teacher_is_asked(teacher: Teacher) -> None:
    model = DistillDQN("MlpPolicy", "CartPole-v1", teacher=teacher, cache_teacher_outputs=False, **TINY)
    model.learn(200)
    buffer = model.replay_buffer
    assert isinstance(buffer, TeacherCacheMixin) and buffer.teacher_outputs is None
    samples = buffer.sample(16)
    th.testing.assert_close(model._teacher_logits(samples), teacher.action_logits(samples.observations))
    assert samples.teacher_outputs is None


def test_buffer_choice_and_save_load(teacher: Teacher, tmp_path: Path) -> None:
    custom = DistillDQN("MlpPolicy", "CartPole-v1", teacher=teacher, replay_buffer_class=ReplayBuffer, **TINY)
    assert type(custom.replay_buffer) is ReplayBuffer
    custom.learn(100)  # the teacher then reads the samples themselves (no VecNormalize)
    memory_saving = DistillDQN(
        "MlpPolicy",
        "CartPole-v1",
        teacher=teacher,
        optimize_memory_usage=True,
        replay_buffer_kwargs=dict(handle_timeout_termination=False),
    )
    assert type(memory_saving.replay_buffer) is TeacherReplayBuffer and memory_saving.replay_buffer.optimize_memory_usage
    assert memory_saving.n_steps == 1  # "auto" bootstraps 1-step targets where SB3's n-step buffer cannot go
    with pytest.raises(ValueError, match="does not support optimize_memory_usage=True: pass optimize_memory_usage=False"):
        DistillDQN("MlpPolicy", "CartPole-v1", teacher=teacher, recipe="outgrow", optimize_memory_usage=True)
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
    # The cache is saved with the buffer and stays valid for the same teacher: nothing to recompute.
    assert buffer.teacher_outputs is not None and buffer.size() == 200
    assert buffer.update_teacher_outputs(loaded.teacher) == 0
    # Another teacher invalidates it.
    other = load_teacher("dqn/CartPole-v1@weak")
    assert buffer.update_teacher_outputs(other) == buffer.size()
    loaded.learn(100, reset_num_timesteps=False)
    assert buffer.n_pending == 0


# ---------------------------------------------------------------------------------------------- PolicyDistill's cache
def _policy_distill(teacher: Any, env: Any, cache: bool, **kwargs: Any) -> PolicyDistill:
    small = dict(learning_starts=50, buffer_size=1_000, batch_size=32, gradient_steps=2, seed=0)
    return PolicyDistill("MlpPolicy", env, teacher=teacher, cache_teacher_outputs=cache, **small, **kwargs)


@pytest.mark.parametrize("kind", ["dqn, VecNormalize, 2 envs", "sac, squashed KL and values"])
def test_policy_distill_cache_gives_the_weights_of_labelling_each_batch(kind: str, zoo_dir: Path) -> None:
    """For a frozen teacher, caching its outputs per transition changes nothing but the cost."""
    if kind.startswith("dqn"):
        teacher, make_env, extra = "dqn/CartPole-v1", lambda: VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0)), {}
    else:
        teacher, make_env = str(zoo_dir / "sac" / "Pendulum-v1_1"), lambda: make_vec_env("Pendulum-v1", seed=0)
        extra = dict(distill_value_coef=0.5)
    cached, labelled = (_policy_distill(teacher, make_env(), cache, **extra).learn(150) for cache in (True, False))
    assert cached.replay_buffer.teacher_outputs is not None and labelled.replay_buffer.teacher_outputs is None
    assert cached._n_updates == labelled._n_updates >= 100
    for (name, a), b in zip(cached.policy.state_dict().items(), labelled.policy.state_dict().values(), strict=True):
        th.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


def test_policy_distill_cache_follows_a_new_teacher() -> None:
    """New transitions are labelled when a batch first holds one; a new teacher (e.g. an online teacher's new
    snapshot) recomputes the cache for the whole buffer."""
    model = _policy_distill("dqn/CartPole-v1", "CartPole-v1", True).learn(100)
    buffer = model.replay_buffer
    assert isinstance(buffer, TeacherCacheMixin)
    buffer._get_samples(np.arange(buffer.size()))  # a batch that holds every row: the deferred ones are labelled
    assert buffer.n_pending == 0
    # PolicyDistill's loss reads only the cached outputs: its fresh batches skip the teacher's observations, stale ones
    # (the teacher must then be asked) keep them, and other samples have them all.
    lean = buffer.sample(8, outputs_suffice=True)
    assert lean.teacher_outputs is not None and lean.teacher_observations is lean.teacher_next_observations is None
    assert buffer.sample(8).teacher_observations is not None
    obs = np.zeros((1, 4), dtype=np.float32)
    buffer.add(obs, obs, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    stale = buffer.sample(8, outputs_suffice=True)
    assert stale.teacher_outputs is None and stale.teacher_observations is not None
    # PolicyDistill's updates are lazy: the new transition is labelled when a batch first holds it, not before.
    model._update_teacher_outputs(model._terms)
    newest = (buffer.pos - 1) % buffer.buffer_size
    others = buffer._get_samples(np.array([0, 1, 2]))
    assert buffer.n_pending == 1 and others.teacher_outputs is not None  # served: the pending row is not in the batch
    held = buffer._get_samples(np.array([0, newest]))
    assert buffer.n_pending == 0
    th.testing.assert_close(held.teacher_outputs["0/logits"][1], model.teacher.action_logits(th.as_tensor(obs))[0])
    sampled = []
    sample = buffer.sample
    buffer.sample = lambda *args, **kwargs: sampled.append(sample(*args, **kwargs)) or sampled[-1]  # type: ignore[method-assign]
    model.train(gradient_steps=2, batch_size=32)
    assert [batch.teacher_observations for batch in sampled] == [None, None]
    del buffer.sample
    weak = load_teacher("dqn/CartPole-v1@weak")
    model.set_teacher(weak)
    model.train(gradient_steps=1, batch_size=32)
    assert buffer.n_pending == 0
    stored = th.as_tensor(buffer.observations[: buffer.size(), 0])
    th.testing.assert_close(th.as_tensor(buffer.teacher_outputs["0/logits"][: buffer.size(), 0]), weak.action_logits(stored))
