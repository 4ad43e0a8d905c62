"""PolicyDistill learning tests: seeded, short, and asserting real scores, with the defaults and with zoo teachers."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill import PolicyDistill, load_teacher
from sb3_distill.policy_distill import collect_teacher_dataset
from sb3_distill.teachers import count_parameters, reference_returns

pytestmark = pytest.mark.learning

SMALL_NET = dict(net_arch=dict(pi=[32], vf=[32]))


def _mean_return(model, env_id: str, n_episodes: int = 10, seed: int = 100) -> float:
    env = Monitor(gym.make(env_id))
    env.reset(seed=seed)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True)
    env.close()
    return float(mean)


def _stop_at(threshold: float, eval_env, eval_freq: int, n_episodes: int = 5) -> EvalCallback:
    """Evaluate every ``eval_freq`` steps and stop as soon as the mean return reaches ``threshold``."""
    stop = StopTrainingOnRewardThreshold(reward_threshold=threshold)
    return EvalCallback(eval_env, callback_on_new_best=stop, eval_freq=eval_freq, n_eval_episodes=n_episodes, verbose=0)


def test_cartpole_from_ppo_with_a_tenth_of_the_parameters(zoo_dir: Path):
    teacher = load_teacher(zoo_dir / "ppo" / "CartPole-v1_1")
    model = PolicyDistill(
        "MlpPolicy", "CartPole-v1", teacher=teacher, policy_kwargs=SMALL_NET, batch_size=64, learning_rate=3e-3, seed=0
    )
    # The whole student (value head included) against the teacher's acting network alone.
    assert count_parameters(model.policy) <= 0.10 * teacher.num_parameters
    model.learn(5_000, callback=_stop_at(475, make_vec_env("CartPole-v1", n_envs=1, seed=1), eval_freq=500))
    assert model.num_timesteps <= 5_000
    assert _mean_return(model, "CartPole-v1") >= 475


#: Every bundled teacher, the env steps a defaults-only student gets, and how often it is evaluated (5 episodes).
BUNDLED = [
    ("dqn/CartPole-v1", 3_000, 500),
    ("dqn/Acrobot-v1", 5_000, 1_000),
    ("dqn/MountainCar-v0", 8_000, 1_000),
    ("dqn/LunarLander-v3", 8_000, 1_000),
    ("sac/Pendulum-v1", 5_000, 1_000),
]
#: Stop at the first 10-episode evaluation at this teacher-normalized score (teacher level, within the noise of 10
#: episodes); then the student plays the very episodes (same env seeds) the teacher's reference was measured on and
#: must keep at least LEVEL_FRESH there (paired: initial states alone move Pendulum's return from -1 to -350).
LEVEL_STOP, LEVEL_FRESH = 0.98, 0.9


def _defaults_reach_teacher_level(spec: str, budget: int, eval_freq: int, **kwargs) -> None:
    teacher = load_teacher(spec)
    env_id = teacher.env_id
    random_return, teacher_return = teacher.reference_returns(n_episodes=10, seed=0)

    def normalized(score: float) -> float:
        return (score - random_return) / (teacher_return - random_return)

    # Nothing but the teacher and the seed (kwargs: the student's network, for the single-layer test).
    model = PolicyDistill("MlpPolicy", env_id, teacher=spec, seed=0, **kwargs)
    stop = random_return + LEVEL_STOP * (teacher_return - random_return)
    model.learn(budget, callback=_stop_at(stop, make_vec_env(env_id, n_envs=1, seed=1), eval_freq, n_episodes=10))
    env = teacher.make_env(seed=0)
    _, student_returns = reference_returns(model, env, n_episodes=10, seed=0)  # the teacher's episodes
    env.close()
    score = float(np.mean(student_returns))
    steps = model.num_timesteps
    message = f"{env_id}: {score:.1f} after {steps} steps (teacher {teacher_return:.1f}, random {random_return:.1f})"
    print(f"{message}: {normalized(score):.2f} teacher-normalized")  # the guide's table (pytest -s)
    assert normalized(score) >= LEVEL_FRESH, message


@pytest.mark.parametrize(("spec", "budget", "eval_freq"), BUNDLED, ids=[spec for spec, _, _ in BUNDLED])
def test_defaults_reach_teacher_level_on_every_bundled_teacher(spec: str, budget: int, eval_freq: int):
    _defaults_reach_teacher_level(spec, budget, eval_freq)


def test_defaults_with_a_single_layer_student():
    model = PolicyDistill("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", policy_kwargs=dict(net_arch=[32]))
    assert count_parameters(model.policy) < 0.05 * model.teachers[0].num_parameters
    _defaults_reach_teacher_level("dqn/CartPole-v1", 3_000, 500, policy_kwargs=dict(net_arch=[32]))


def test_pendulum_from_a_gsde_sac(zoo_dir: Path):
    # The zoo's SAC Pendulum uses gSDE: its state-dependent noise is a diagonal Gaussian per state.
    teacher = load_teacher(zoo_dir / "sac" / "Pendulum-v1_1")
    random_return, teacher_return = teacher.reference_returns("Pendulum-v1", n_episodes=10, seed=0)

    def normalized(score: float) -> float:
        return (score - random_return) / (teacher_return - random_return)

    net = dict(net_arch=dict(pi=[32, 32], vf=[32, 32]))
    model = PolicyDistill("MlpPolicy", "Pendulum-v1", teacher=teacher, policy_kwargs=net, batch_size=64, seed=0)
    assert model.policy.squash_output and model._terms[0].distill_loss == "kl"
    stop_threshold = random_return + 0.95 * (teacher_return - random_return)
    model.learn(15_000, callback=_stop_at(stop_threshold, make_vec_env("Pendulum-v1", n_envs=1, seed=1), eval_freq=2_500))
    assert model.num_timesteps <= 15_000
    env = Monitor(gym.make("Pendulum-v1"))
    env.reset(seed=0)
    score, _ = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True)
    assert normalized(score) >= 0.9, f"student {score:.1f}, teacher {teacher_return:.1f}, random {random_return:.1f}"


def test_mountaincar_from_a_vecnormalize_ppo_teacher(zoo_dir: Path):
    # The teacher normalizes with its own statistics; the student with its own VecNormalize (both see raw data).
    teacher = load_teacher(zoo_dir / "ppo" / "MountainCar-v0_1")
    assert teacher.obs_normalizer is not None
    env = VecNormalize(make_vec_env("MountainCar-v0", n_envs=1, seed=0), norm_reward=False)
    model = PolicyDistill(
        "MlpPolicy", env, teacher=teacher, policy_kwargs=SMALL_NET, batch_size=64, learning_rate=3e-3, seed=0
    )
    eval_env = VecNormalize(make_vec_env("MountainCar-v0", n_envs=1, seed=1), norm_reward=False, training=False)
    model.learn(10_000, callback=_stop_at(-115, eval_env, eval_freq=1_000))  # EvalCallback syncs the statistics
    eval_env = VecNormalize(make_vec_env("MountainCar-v0", n_envs=1, seed=100), norm_reward=False, training=False)
    eval_env.obs_rms = env.obs_rms
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    assert mean >= -130


def test_cartpole_from_two_teachers_of_different_algorithms(zoo_dir: Path):
    teachers = [load_teacher(zoo_dir / "ppo" / "CartPole-v1_1"), load_teacher(zoo_dir / "dqn" / "CartPole-v1_1")]
    teacher_level = min(_mean_return(teacher, "CartPole-v1") for teacher in teachers)
    model = PolicyDistill(
        "MlpPolicy",
        "CartPole-v1",
        teacher=teachers,
        teacher_weights=[0.5, 0.5],
        policy_kwargs=SMALL_NET,
        batch_size=64,
        learning_rate=3e-3,
        seed=0,
    )
    model.learn(5_000, callback=_stop_at(475, make_vec_env("CartPole-v1", n_envs=1, seed=1), eval_freq=500))
    assert _mean_return(model, "CartPole-v1") >= 0.95 * teacher_level


def test_cartpole_offline_from_a_saved_dataset(zoo_dir: Path, tmp_path: Path):
    teacher = load_teacher(zoo_dir / "ppo" / "CartPole-v1_1")
    teacher_level = _mean_return(teacher, "CartPole-v1")
    collect_teacher_dataset(teacher, "CartPole-v1", 5_000, tmp_path / "cartpole_ppo", seed=0)
    # No env at all: the spaces come from the dataset, so no env step can happen.
    model = PolicyDistill(
        "MlpPolicy",
        None,
        teacher=teacher,
        dataset=tmp_path / "cartpole_ppo.npz",
        policy_kwargs=SMALL_NET,
        batch_size=64,
        learning_rate=3e-3,
        seed=0,
    )
    model.learn_offline(3_000)
    assert model.num_timesteps == 0 and model.get_env() is None
    assert _mean_return(model, "CartPole-v1") >= 0.95 * teacher_level
