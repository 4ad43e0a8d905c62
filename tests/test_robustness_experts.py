"""Several dynamics-teachers into one student: RandomDynamics, ExpertTeacher, ShiftDynamics, train_teachers --dynamics."""

import argparse

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium.wrappers import FrameStackObservation
from rl_zoo3.utils import StoreDict, get_wrapper_class
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env

from sb3_distill import PolicyDistill, load_teacher
from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.robustness import (
    DYNAMICS_KEY,
    AttackError,
    TEACHER_OBSERVATION_KEY,
    ExpertTeacher,
    GaussianNoise,
    RandomDynamics,
    ShiftDynamics,
    StudentObservation,
    differentiable_agent,
    hide_velocities,
)
from scripts import train_teachers

VARIANTS = [{"force_mag": 0.25}, {}]


@pytest.fixture(scope="module")
def experts():
    """The bundled CartPole teacher and a second, different DQN (fresh weights): two experts that disagree."""
    other = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[16]), seed=3, device="cpu")
    return load_teacher("dqn/CartPole-v1", device="cpu"), load_teacher(other, device="cpu")


def test_random_dynamics_draws_per_episode_and_tells_the_teacher():
    env = RandomDynamics(gym.make("CartPole-v1"), VARIANTS, seed=0)
    assert env.teacher_observation_space.shape == (5,) and env.teacher_observation_space.high[-1] == 1
    drawn = []
    for episode in range(12):
        obs, info = env.reset(seed=7) if episode == 0 else env.reset()
        variant = info[DYNAMICS_KEY]
        drawn.append(variant)
        # the variant runs, from the nominal constants (not compounded), CartPole's derived constants follow
        assert env.unwrapped.force_mag == (2.5 if variant == 0 else 10.0)
        assert env.unwrapped.total_mass == pytest.approx(1.1) and env.unwrapped.polemass_length == pytest.approx(0.05)
        np.testing.assert_array_equal(info[TEACHER_OBSERVATION_KEY], np.append(obs, variant).astype(np.float32))
        obs, _, _, _, info = env.step(0)
        np.testing.assert_array_equal(info[TEACHER_OBSERVATION_KEY][:4], obs)
        assert info[TEACHER_OBSERVATION_KEY][4] == variant and info[DYNAMICS_KEY] == variant
    assert set(drawn) == {0, 1}
    _, info = env.reset(seed=7)
    assert info[DYNAMICS_KEY] == drawn[0]  # a seeded reset draws again from the seed
    # tell_teacher=False: domain randomization only (for teachers that are no experts of the variants)
    untold = RandomDynamics(gym.make("CartPole-v1"), VARIANTS, seed=0, tell_teacher=False)
    obs, info = untold.reset(seed=7)
    np.testing.assert_array_equal(info[TEACHER_OBSERVATION_KEY], obs)
    assert info[DYNAMICS_KEY] == drawn[0] and untold.teacher_observation_space.shape == (4,)

    # A StudentObservation on top changes the student's view, not the teacher's (index included); frame stacking too
    student = FrameStackObservation(StudentObservation(env, hide_velocities("CartPole-v1")), stack_size=2)
    obs, info = student.reset(seed=1)
    assert obs.shape == (2, 2) and student.get_wrapper_attr("teacher_observation_space").shape == (5,)
    assert info[TEACHER_OBSERVATION_KEY].shape == (5,) and info[TEACHER_OBSERVATION_KEY][4] == info[DYNAMICS_KEY]
    # ... and a StudentObservation over another keeps the innermost (clean) teacher view
    noisy = StudentObservation(StudentObservation(gym.make("CartPole-v1"), hide_velocities("CartPole-v1")), GaussianNoise(1.0))
    obs, info = noisy.reset(seed=0)
    assert obs.shape == (2,) and info[TEACHER_OBSERVATION_KEY].shape == (4,)
    assert noisy.teacher_observation_space.shape == (4,)


@pytest.mark.parametrize(
    "variants, probabilities, message",
    [
        ([], None, "at least one variant"),
        ([{"no_such_constant": 2.0}], None, "no numeric constant"),
        ([{"force_mag": 0.0}], None, "must be > 0"),
        (VARIANTS, [1.0], "one per variant"),
        (VARIANTS, [0.0, 0.0], "all zero"),
    ],
)
def test_random_dynamics_bad_input(variants, probabilities, message):
    with pytest.raises(ValueError, match=message):
        RandomDynamics(gym.make("CartPole-v1"), variants, probabilities)


def test_random_dynamics_refuses_box2d():
    with pytest.raises(ValueError, match="Box2D"):
        RandomDynamics(gym.make("LunarLander-v3"), [{"gravity": 0.5}])


def test_expert_teacher_answers_with_each_rows_expert(experts):
    first, second = experts
    teacher = ExpertTeacher([first, second])
    assert teacher.observation_space.shape == (5,) and teacher.has_q_values
    assert teacher.num_parameters == first.num_parameters + second.num_parameters
    states = np.random.default_rng(0).normal(scale=0.1, size=(6, 4)).astype(np.float32)
    index = np.array([0, 1, 1, 0, 1, 0])
    obs = np.concatenate([states, index[:, None].astype(np.float32)], axis=1)
    own = [expert.q_values(states) for expert in experts]
    expected = th.stack([own[i][row] for row, i in enumerate(index)])
    th.testing.assert_close(teacher.q_values(obs), expected)
    th.testing.assert_close(teacher.q_values(th.as_tensor(obs)), expected)
    th.testing.assert_close(teacher.action_logits(obs), expected)
    th.testing.assert_close(teacher.values(obs), expected.max(dim=1).values)
    th.testing.assert_close(teacher.distribution(obs, temperature=0.5).distribution.probs, th.softmax(expected / 0.5, dim=1))
    greedy = expected.argmax(dim=1).numpy()
    np.testing.assert_array_equal(teacher.actions(obs).numpy(), greedy)
    np.testing.assert_array_equal(teacher.predict(obs)[0], greedy)
    assert teacher.predict(obs[1])[0] == greedy[1]
    assert len({first.fingerprint, second.fingerprint, teacher.fingerprint}) == 3

    with pytest.raises(IncompatibleTeacherError, match=r"expert's index, 0 \.\. 1"):
        teacher.q_values(np.concatenate([states, np.full((6, 1), 2.0, np.float32)], axis=1))
    with pytest.raises(IncompatibleTeacherError, match="shape"):
        teacher.q_values(states)
    with pytest.raises(IncompatibleTeacherError, match="RandomDynamics"):
        teacher.make_env()
    with pytest.raises(IncompatibleTeacherError, match="reference_returns"):
        teacher.reference_returns()
    with pytest.raises(AttackError, match="one by one"):
        differentiable_agent(teacher)


def test_expert_teacher_bad_experts(experts):
    ppo = PPO("MlpPolicy", "CartPole-v1", n_steps=64, device="cpu")
    with pytest.raises(IncompatibleTeacherError, match="one kind"):
        ExpertTeacher([experts[0], ppo])
    with pytest.raises(IncompatibleTeacherError, match="different spaces"):
        ExpertTeacher([experts[0], DQN("MlpPolicy", "Acrobot-v1", device="cpu")])
    with pytest.raises(ValueError, match="a list of experts"):
        ExpertTeacher("dqn/CartPole-v1")


def test_each_sample_is_labelled_by_the_expert_of_its_episode(experts):
    """PolicyDistill's loss takes, for every sample of a batch, the logits of the expert whose dynamics it ran in."""
    teacher = ExpertTeacher(list(experts))

    def wrap(env):
        return FrameStackObservation(RandomDynamics(env, VARIANTS, seed=0), stack_size=2)

    env = make_vec_env("CartPole-v1", n_envs=2, seed=0, wrapper_class=wrap)
    model = PolicyDistill("MlpPolicy", env, teacher=teacher, policy_kwargs=dict(net_arch=[16]), seed=0, learning_starts=0)
    model.learn(200)
    kept = model.replay_buffer.teacher_observations[: model.replay_buffer.pos].reshape(-1, 5)
    assert set(np.unique(kept[:, 4])) == {0.0, 1.0}  # both variants ran, the index rode along with every transition
    batch = model.replay_buffer.sample(64)
    (targets,) = model._teacher_targets(model._require_terms(), batch)
    observations = batch.teacher_observations
    expected = th.stack(
        [experts[int(row[4])].action_logits(row[None, :4].numpy())[0] for row in observations]  # row by row
    )
    th.testing.assert_close(targets.logits, expected)
    assert model.observation_space.shape == (2, 4)  # the student sees the frames, never the index


def test_shift_dynamics_wrapper_and_train_teachers_dynamics(monkeypatch, tmp_path):
    env = ShiftDynamics(gym.make("CartPole-v1"), {"force_mag": 0.25, "length": 2.0})
    assert env.unwrapped.force_mag == 2.5 and env.unwrapped.polemass_length == pytest.approx(0.1)
    with pytest.raises(ValueError, match="at least one"):
        ShiftDynamics(gym.make("CartPole-v1"), {})

    args = train_teachers.parse_args(["--only", "dqn/CartPole-v1", "--dynamics", "force_mag=0.25", "--out", str(tmp_path)])
    assert args.dynamics == {"force_mag": 0.25}
    assert train_teachers.output_root(args) == tmp_path / "dynamics" / "force_mag=0.25"
    for bad in ("force_mag", "force_mag=0", "=2", "force_mag=x"):
        with pytest.raises(SystemExit):
            train_teachers.parse_args(["--dynamics", bad])
    # rl-zoo3 gets the shift as its env_wrapper hyperparameter, and builds the shifted env from it
    commands = []
    monkeypatch.setattr(train_teachers.subprocess, "run", lambda cmd, **kwargs: commands.append(cmd) or FAIL)
    with pytest.raises(RuntimeError, match="failed"):
        train_teachers.train_with_zoo("dqn", "CartPole-v1", 0, tmp_path / "log", 100, 1, dynamics={"force_mag": 0.25})
    (value,) = commands[0][commands[0].index("--hyperparams") + 1 :]
    namespace = argparse.Namespace()
    StoreDict(["--hyperparams"], "hyperparams")(argparse.ArgumentParser(), namespace, [value])
    shifted = get_wrapper_class(namespace.hyperparams)(gym.make("CartPole-v1"))
    assert shifted.unwrapped.force_mag == 2.5
    eval_env = train_teachers.make_eval_env("CartPole-v1", tmp_path, 0, {"force_mag": 0.25})
    assert eval_env.envs[0].unwrapped.force_mag == 2.5
    # refused before anything runs: an unknown constant, Box2D, --weak with --dynamics
    assert train_teachers.main(["--only", "dqn/CartPole-v1", "--dynamics", "nothing=2", "--out", str(tmp_path)]) == 2
    assert train_teachers.main(["--only", "dqn/LunarLander-v3", "--dynamics", "gravity=2", "--out", str(tmp_path)]) == 2
    assert train_teachers.main(["--weak", "--dynamics", "force_mag=2", "--out", str(tmp_path)]) == 2
    assert (
        train_teachers.meets_target({"algo": "dqn", "env_id": "CartPole-v1", "variant": "dynamics x", "dynamics": {}}) is None
    )


class _Failed:
    returncode = 1


FAIL = _Failed()
