"""DistillPPO: API coverage with tiny budgets (teacher kinds, λ_t modes, several teachers, VecNormalize, save/load,
SB3 tools, bad input), plus short learning tests that assert real scores (marked ``learning``)."""

import argparse
import json
import math
import zipfile
from collections import deque
from pathlib import Path

import gymnasium as gym
import numpy as np
import optuna
import pandas as pd
import pytest
import torch as th
import yaml
from sb3_contrib import ARS, QRDQN, TQC
from stable_baselines3 import A2C, DQN, PPO, TD3
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill import DistillPPO, load_teacher
from sb3_distill.common.distill_coef import qdagger_coef, student_score
from sb3_distill.common.distill_coef import AUTO_COEF_CHOICES, STALL_PATIENCE, StallGate
from sb3_distill.distill_ppo import TeacherRolloutBuffer, parse_distill_coef
from sb3_distill.distill_ppo.teacher_phase import AUTO_PRETRAIN_EPOCHS
from sb3_distill.errors import IncompatibleTeacherError, TeacherError
from sb3_distill.policy_distill import SquashedActorCriticPolicy
from sb3_distill.zoo.samplers import convert_distill_ppo_params, sample_distill_ppo_params

TINY = dict(n_steps=64, batch_size=32, n_epochs=2, seed=0, policy_kwargs=dict(net_arch=[32]))


# ---------------------------------------------------------------------------------------------- teachers
@pytest.fixture(scope="module")
def teachers():
    """One teacher of every kind PolicyDistill accepts: the bundled DQN and SAC, tiny ones trained here for the rest."""
    tiny_off_policy = dict(learning_starts=50, buffer_size=500, seed=0, policy_kwargs=dict(net_arch=[32]))
    ppo = PPO("MlpPolicy", "CartPole-v1", n_steps=256, batch_size=64, seed=0, policy_kwargs=dict(net_arch=[32]))
    return {
        "dqn": load_teacher("dqn/CartPole-v1"),
        "sac": load_teacher("sac/Pendulum-v1"),
        "ppo": load_teacher(ppo.learn(512)),
        "a2c": load_teacher(A2C("MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(net_arch=[32])).learn(50)),
        "qrdqn": load_teacher(QRDQN("MlpPolicy", "CartPole-v1", **tiny_off_policy).learn(100)),
        "ars": load_teacher(ARS("LinearPolicy", "CartPole-v1", seed=0)),
        "td3": load_teacher(TD3("MlpPolicy", "Pendulum-v1", **tiny_off_policy).learn(100)),
        "tqc": load_teacher(TQC("MlpPolicy", "Pendulum-v1", **tiny_off_policy).learn(100)),
        "ppo_continuous": load_teacher(PPO("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=64, seed=0).learn(64)),
    }


ENV_OF = {"dqn": "CartPole-v1", "ppo": "CartPole-v1", "a2c": "CartPole-v1", "qrdqn": "CartPole-v1", "ars": "CartPole-v1"}
ENV_OF.update({"sac": "Pendulum-v1", "td3": "Pendulum-v1", "tqc": "Pendulum-v1", "ppo_continuous": "Pendulum-v1"})
#: The policy loss "auto" resolves to, and whether the student squashes its actions, for each teacher kind.
EXPECTED = {
    "dqn": ("kl", False),
    "ppo": ("kl", False),
    "a2c": ("kl", False),
    "qrdqn": ("kl", False),
    "ars": ("kl", False),
    "sac": ("kl", True),
    "tqc": ("kl", True),
    "td3": ("mse", True),
    "ppo_continuous": ("kl", False),
}


def _logged(model: DistillPPO, tmp_path, steps: int) -> pd.DataFrame:
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(steps)
    logs = pd.read_csv(tmp_path / "progress.csv")
    # SB3 dumps the logs of an iteration before training on it: the first row has no train/ keys.
    return logs.dropna(subset=["train/distill_coef"])


# ---------------------------------------------------------------------------------------------- API
@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_teacher_kind(teachers, kind, tmp_path):
    model = DistillPPO("MlpPolicy", ENV_OF[kind], teacher=teachers[kind], distill_coef=1.0, **TINY)
    loss, squashes = EXPECTED[kind]
    assert model._terms[0].distill_loss == loss
    assert model.policy.squash_output == squashes
    logs = _logged(model, tmp_path, 128)
    assert (logs["train/distill_coef"] == 1.0).all()
    assert np.isfinite(logs["train/distill_loss"]).all() and (logs["train/distill_loss"] >= 0).all()
    assert ("train/teacher_agreement" in logs) == teachers[kind].is_discrete
    if teachers[kind].is_discrete:
        assert logs["train/teacher_agreement"].between(0, 1).all()


@pytest.mark.parametrize("loss", ["kl", "nll"])
def test_discrete_losses_and_temperature(teachers, loss, tmp_path):
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], distill_loss=loss, temperature=0.1, **TINY)
    assert model._terms[0].distill_loss == loss and model._terms[0].temperature == 0.1
    assert np.isfinite(_logged(model, tmp_path, 128)["train/distill_loss"]).all()


@pytest.mark.parametrize("loss", ["mse", "nll"])
def test_continuous_losses(teachers, loss, tmp_path):
    model = DistillPPO("MlpPolicy", "Pendulum-v1", teacher=teachers["sac"], distill_loss=loss, squash_output=False, **TINY)
    assert not model.policy.squash_output and model._terms[0].distill_loss == loss
    assert np.isfinite(_logged(model, tmp_path, 128)["train/distill_loss"]).all()


def test_squashed_student_acts_within_bounds(teachers):
    model = DistillPPO("MlpPolicy", "Pendulum-v1", teacher=teachers["sac"], **TINY).learn(128)
    assert isinstance(model.policy, SquashedActorCriticPolicy)
    obs = np.array([gym.make("Pendulum-v1").observation_space.sample() for _ in range(32)])
    actions, _ = model.predict(obs, deterministic=False)
    assert np.all(np.abs(actions) <= 2.0)


def test_zero_coef_is_ppo(teachers):
    """With λ = 0 the mirrored train() must be PPO's exactly: same seed, same weights."""
    settings = dict(TINY, n_epochs=3)
    ppo = PPO("MlpPolicy", "CartPole-v1", **settings).learn(192)
    student = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], distill_coef=0.0, **settings).learn(192)
    for ours, theirs in zip(student.policy.parameters(), ppo.policy.parameters(), strict=True):
        assert th.equal(ours, theirs)


def test_distill_term_moves_the_student_towards_the_teacher(teachers):
    """Pure kickstarting (no advantage signal: vf and pg cancel out in expectation) raises the teacher agreement."""
    teacher = teachers["dqn"]
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teacher, distill_coef=10.0, learning_rate=3e-3, **TINY)
    obs = np.array([gym.make("CartPole-v1").observation_space.sample() * 0.1 for _ in range(256)], dtype=np.float32)

    def agreement() -> float:
        actions, _ = model.predict(obs, deterministic=True)
        return float(np.mean(actions == teacher.predict(obs)[0]))

    before = agreement()
    model.learn(1024)
    assert agreement() > max(before, 0.8)


def test_sample_indices_match_teacher_observations(teachers):
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], **TINY)
    model.learn(64)
    teacher_obs = model.rollout_buffer.rollout_teacher_observations()
    for batch in model.rollout_buffer.get(16):
        assert th.equal(teacher_obs[batch.indices], batch.observations)


def test_vecnormalize_student_teacher_sees_raw_observations(teachers):
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0), norm_reward=False, training=False)
    # Fixed statistics, so that the normalization of every stored observation can be checked exactly.
    env.obs_rms.mean = np.array([0.5, -1.0, 0.2, 2.0])
    env.obs_rms.var = np.array([4.0, 9.0, 0.25, 16.0])
    model = DistillPPO("MlpPolicy", env, teacher=teachers["dqn"], **TINY).learn(64)
    buffer = model.rollout_buffer
    assert isinstance(buffer, TeacherRolloutBuffer) and buffer.teacher_observations is not None
    raw = buffer.rollout_teacher_observations().cpu().numpy()  # in sample-index order, as the buffer's flattened arrays
    normalized = buffer.observations.reshape(-1, 4)  # flattened by get() during training
    assert buffer.generator_ready and not np.allclose(raw, normalized)
    np.testing.assert_allclose(env.normalize_obs(raw), normalized, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(raw, buffer.swap_and_flatten(buffer.teacher_observations))


def test_smoke_vecnormalize_training_student(teachers, tmp_path):
    """Smoke test: a student whose VecNormalize statistics move while it trains runs, with finite losses."""
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    model = DistillPPO("MlpPolicy", env, teacher=teachers["dqn"], distill_value_coef=0.0, **TINY)
    assert np.isfinite(_logged(model, tmp_path, 256)["train/distill_loss"]).all()


def test_several_teachers(teachers, tmp_path):
    model = DistillPPO(
        "MlpPolicy", "CartPole-v1", teacher=[teachers["dqn"], teachers["ppo"]], teacher_weights=[0.25, 0.75], **TINY
    )
    assert [term.weight for term in model._terms] == [0.25, 0.75]
    assert [term.temperature for term in model._terms] == [0.01, 1.0]  # a Q-value teacher, a policy teacher
    assert len(model.teachers) == 2
    assert np.isfinite(_logged(model, tmp_path, 128)["train/distill_loss"]).all()


def test_value_distillation(teachers, tmp_path):
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"], distill_value_coef=0.5, distill_coef=1.0, **TINY)
    with_value = _logged(model, tmp_path / "a", 128)["train/distill_loss"]
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"], distill_coef=1.0, **TINY)
    without = _logged(model, tmp_path / "b", 128)["train/distill_loss"]
    assert (with_value > without).all()  # the value term is added (and the teacher's values are far from a new critic's)


def test_dict_observations(tmp_path):
    from stable_baselines3.common.envs import SimpleMultiObsEnv

    env = SimpleMultiObsEnv(random_start=False)
    teacher = load_teacher(PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, seed=0))
    with pytest.raises(ValueError, match="reference_returns"):  # "qdagger" cannot measure returns on an unregistered env
        DistillPPO("MultiInputPolicy", env, teacher=teacher, **TINY)
    model = DistillPPO("MultiInputPolicy", env, teacher=teacher, distill_coef=1.0, **TINY)
    assert np.isfinite(_logged(model, tmp_path, 128)["train/distill_loss"]).all()


# ---------------------------------------------------------------------------------------------- λ_t
def test_distill_coef_modes():
    assert parse_distill_coef(0.5) == ("constant", 0.5)
    assert parse_distill_coef("qdagger") == ("qdagger", 1.0)
    assert parse_distill_coef("qdagger_0.3") == ("qdagger", 0.3)
    mode, schedule = parse_distill_coef("lin_2.0")
    assert mode == "schedule" and schedule(1.0) == 2.0 and schedule(0.25) == 0.5
    schedule = LinearSchedule(1.0, 0.0, 0.5)
    assert parse_distill_coef(schedule) == ("schedule", schedule)


def test_qdagger_coef_by_hand():
    # random -100, teacher 300: a student at 100 is halfway, so λ = λ0 · 0.5
    assert student_score([50.0, 150.0], -100.0, 300.0) == pytest.approx(0.5)
    assert qdagger_coef(0.5, initial=2.0) == pytest.approx(1.0)
    assert qdagger_coef(student_score([400.0], -100.0, 300.0), 2.0) == 0.0  # above the teacher: PPO alone
    # Below random (s = -0.25): λ0, the largest weight (clipped), not 1.25 · λ0
    assert student_score([-200.0], -100.0, 300.0) == pytest.approx(-0.25) and qdagger_coef(-0.25, 2.0) == 2.0
    assert student_score([], -100.0, 300.0) is None and qdagger_coef(None, 2.0) == 2.0  # no episode yet
    assert student_score([10.0], 20.0, 20.0) is None  # a teacher no better than random scores nothing
    # DistillDQN's exponent and floor: λ0 · max(clip(1 − s, 0, 1)^p, α_min)
    assert qdagger_coef(0.5, 2.0, exponent=3.0) == pytest.approx(0.25) and qdagger_coef(1.5, 2.0, floor=0.1) == 0.2


def test_qdagger_coef_follows_the_students_returns(teachers, tmp_path):
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 500.0), **TINY)
    assert model.current_distill_coef() == 1.0  # no episode yet
    model.ep_info_buffer = deque([{"r": 260.0, "l": 260}] * 3)
    assert model.current_distill_coef() == pytest.approx(0.5)
    model.ep_info_buffer = deque([{"r": 500.0, "l": 500}])
    assert model.current_distill_coef() == 0.0
    # Without reference_returns, they are measured once on the env (a random policy and the teacher).
    measured = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], **TINY)
    random_return, teacher_return = measured.teacher_reference_returns()
    assert random_return < 50 and teacher_return > 400


def test_schedule_coef_is_logged(teachers, tmp_path):
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], distill_coef=LinearSchedule(1.0, 0.0, 1.0), **TINY)
    coefs = _logged(model, tmp_path, 256)["train/distill_coef"].to_numpy()
    assert coefs[0] < 1.0 and np.all(np.diff(coefs) < 0) and coefs[-1] >= 0


# ---------------------------------------------------------------------------------------------- SB3 tools
def test_save_load(teachers, tmp_path):
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **TINY).learn(64)
    model.save(tmp_path / "student")
    with zipfile.ZipFile(tmp_path / "student.zip") as archive:
        data = json.loads(archive.read("data"))
    assert not {"teacher", "teachers", "_terms", "rollout_buffer"} & set(data)
    obs = np.array([gym.make("CartPole-v1").observation_space.sample() for _ in range(8)])

    alone = DistillPPO.load(tmp_path / "student")
    np.testing.assert_array_equal(alone.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    assert alone.teachers == []

    with pytest.raises(TeacherError, match="can predict but not train"):
        alone.learn(64)
    env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    # load(path, env) re-resolves the saved teacher spec, and training continues.
    again = DistillPPO.load(tmp_path / "student", env=env)
    assert again.teacher_specs == ["dqn/CartPole-v1"] and len(again.teachers) == 1
    again.learn(64)
    other = DistillPPO.load(tmp_path / "student", env=env, teacher=teachers["ppo"], distill_coef=0.5)
    assert other.teacher is teachers["ppo"] and other.current_distill_coef() == 0.5
    other.learn(64)


def test_squashed_student_save_load(teachers, tmp_path):
    model = DistillPPO("MlpPolicy", "Pendulum-v1", teacher=teachers["sac"], **TINY).learn(64)
    model.save(tmp_path / "student")
    loaded = DistillPPO.load(tmp_path / "student")
    assert isinstance(loaded.policy, SquashedActorCriticPolicy)
    obs = np.array([gym.make("Pendulum-v1").observation_space.sample() for _ in range(8)])
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_refuses_to_save_over_teacher(teachers, tmp_path):
    path = tmp_path / "teacher.zip"
    PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32).save(path)
    before = path.read_bytes()
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=path, **TINY)
    with pytest.raises(TeacherError, match="Refusing"):
        model.save(path)
    assert path.read_bytes() == before


def test_eval_callback_and_evaluate_policy(teachers, tmp_path):
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=5)
    callback = EvalCallback(eval_env, eval_freq=64, n_eval_episodes=2, log_path=str(tmp_path), verbose=0)
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], **TINY).learn(192, callback=callback)
    assert len(callback.evaluations_results) == 3 and all(len(results) == 2 for results in callback.evaluations_results)
    returns, lengths = evaluate_policy(model, eval_env, n_eval_episodes=2, return_episode_rewards=True)
    assert len(returns) == 2 and returns == lengths  # CartPole: +1 per step, so the student played whole episodes


def test_several_envs(teachers):
    env = make_vec_env("Pendulum-v1", n_envs=3, seed=0)
    model = DistillPPO("MlpPolicy", env, teacher=teachers["sac"], **TINY).learn(3 * 64 * 2)
    assert model.num_timesteps == 3 * 64 * 2


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("coef", "error", "match"),
    [
        (-0.1, ValueError, ">= 0"),
        (math.nan, ValueError, "finite"),
        (math.inf, ValueError, "finite"),
        ("qdagger_-1", ValueError, "Unknown distill_coef"),
        ("linear", ValueError, "Unknown distill_coef"),
        ([1.0, 0.0], TypeError, "neither a number nor callable"),
        (True, TypeError, "neither a number nor callable"),
        (lambda progress: progress - 0.5, ValueError, "schedule gives -0.5"),
        (lambda progress: math.nan, ValueError, "schedule gives nan"),
    ],
)
def test_bad_distill_coef(coef, error, match):
    # Raised before the teacher is even loaded.
    with pytest.raises(error, match=match):
        DistillPPO("MlpPolicy", "CartPole-v1", teacher="no/such-teacher", distill_coef=coef)


@pytest.mark.parametrize(
    ("env_id", "kind", "match"),
    [
        ("Pendulum-v1", "dqn", "discrete teacher cannot teach a continuous student"),
        ("CartPole-v1", "sac", "continuous teacher cannot teach a discrete student"),
    ],
)
def test_discrete_continuous_mismatch(teachers, env_id, kind, match):
    with pytest.raises(IncompatibleTeacherError, match=match):
        DistillPPO("MlpPolicy", env_id, teacher=teachers[kind], **TINY)


def test_teacher_on_other_spaces():
    with pytest.raises(IncompatibleTeacherError):
        DistillPPO("MlpPolicy", "CartPole-v1", teacher="dqn/Acrobot-v1", **TINY)
    with pytest.raises(IncompatibleTeacherError, match="different spaces"):
        DistillPPO("MlpPolicy", "CartPole-v1", teacher=["dqn/CartPole-v1", "dqn/Acrobot-v1"], **TINY)


@pytest.mark.parametrize(
    ("kind", "env_kwargs", "match"),
    [
        ("dqn", dict(distill_loss="mse"), "regresses continuous actions"),
        ("td3", dict(distill_loss="kl"), "deterministic"),
        ("sac", dict(distill_loss="kl", squash_output=False), "same kind"),
        ("ars", dict(distill_value_coef=0.5), "critic"),
    ],
)
def test_loss_the_teacher_cannot_give(teachers, kind, env_kwargs, match):
    with pytest.raises(IncompatibleTeacherError, match=match):
        DistillPPO("MlpPolicy", ENV_OF[kind], teacher=teachers[kind], **env_kwargs, **TINY)


def test_other_bad_input(teachers):
    with pytest.raises(TeacherError, match="needs a teacher"):
        DistillPPO("MlpPolicy", "CartPole-v1", **TINY)
    with pytest.raises(ValueError, match="temperature"):
        DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], temperature=0.0)
    with pytest.raises(ValueError, match="teacher_weights"):
        DistillPPO("MlpPolicy", "CartPole-v1", teacher=[teachers["dqn"], teachers["ppo"]], teacher_weights=[1.0])
    with pytest.raises(ValueError, match="distill_value_coef"):
        DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], distill_value_coef=-1.0)
    with pytest.raises(ValueError, match="distill_loss"):
        DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], distill_loss="l2")
    with pytest.raises(ValueError, match="kl_direction"):
        DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], kl_direction="both")
    with pytest.raises(ValueError, match="Discrete and Box"):
        DistillPPO("MlpPolicy", _multi_discrete_env(), teacher=teachers["dqn"])


def _multi_discrete_env() -> gym.Env:
    from stable_baselines3.common.envs import IdentityEnvMultiDiscrete

    return IdentityEnvMultiDiscrete(dim=2)


def test_vecnormalize_errors(teachers):
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=1))
    with pytest.raises(IncompatibleTeacherError, match="norm_reward"):
        DistillPPO("MlpPolicy", env, teacher=teachers["ppo"], distill_value_coef=0.5, **TINY)
    with pytest.raises(ValueError, match="raw ones"):
        DistillPPO("MlpPolicy", env, teacher=teachers["dqn"], rollout_buffer_class=RolloutBuffer, **TINY)
    # Without VecNormalize, SB3's plain buffer is fine: the minibatch is labelled as it comes.
    model = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], rollout_buffer_class=RolloutBuffer, **TINY)
    model.learn(64)


# ---------------------------------------------------------------------------------------------- learning
#: rl-zoo3's PPO hyperparameters for CartPole-v1 (rl_zoo3/hyperparams/ppo.yml), as hyperparams/distill_ppo.yml uses them.
ZOO_CARTPOLE = dict(
    n_steps=32,
    batch_size=256,
    gae_lambda=0.8,
    gamma=0.98,
    n_epochs=20,
    ent_coef=0.0,
    learning_rate=LinearSchedule(0.001, 0.0, 1.0),
    clip_range=LinearSchedule(0.2, 0.0, 1.0),
)


@pytest.fixture(scope="module")
def weak_teacher():
    """An SB3 DQN with rl-zoo3's CartPole-v1 hyperparameters stopped early: it balances the pole, but not for long."""
    model = DQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]),
        seed=0,
    ).learn(6000)
    return load_teacher(model)


def _score(model, n_episodes: int = 20, env_id: str = "CartPole-v1") -> float:
    mean, _ = evaluate_policy(model, make_vec_env(env_id, n_envs=1, seed=123), n_eval_episodes=n_episodes)
    return float(mean)


@pytest.mark.learning
def test_kickstarting_from_strong_teacher_reaches_its_level():
    """PPO from scratch with these settings needs far longer (see hyperparams/distill_ppo.yml for the measurement)."""
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = DistillPPO("MlpPolicy", env, teacher="dqn/CartPole-v1", seed=0, **ZOO_CARTPOLE).learn(10_000)
    assert _score(model) >= 475


@pytest.mark.learning
def test_defaults_from_a_strong_teacher_start_at_its_level():
    """
    Issue 20, strong teacher: with nothing but ``teacher=`` and ``seed=`` (SB3's PPO defaults) the teacher plays the
    first rollout and the student, cloned on it, plays at the teacher's level after two rollouts (one of its own), where
    PPO from scratch (the control: same defaults, seed and budget) is not. Before the teacher phase the student was at
    104 here (seed 0: 112; imitating the teacher on the states of its own near-random first rollout), PPO from scratch
    at 429 (docs/guide/distill_ppo.md "Which default").
    """
    budget = 2 * 2048
    student = DistillPPO("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", seed=0).learn(budget)
    assert student.teacher_steps_played == 2048 and "the teacher plays the first 2048 env steps" in student.distill_coef_choice
    scratch_score = _score(PPO("MlpPolicy", "CartPole-v1", seed=0).learn(budget), n_episodes=10)
    student_score = _score(student, n_episodes=10)
    assert student_score >= 475, f"student {student_score} (PPO from scratch {scratch_score})"
    assert student_score >= scratch_score, f"student {student_score} vs PPO from scratch {scratch_score}"


#: How far below PPO from scratch (same seed, budget and settings) a student may end and still count as "not below":
#: PPO's own spread on CartPole-v1 at these budgets (SB3 defaults, 10k steps: 468 / 368 on seeds 0 / 1; DistillPPO runs
#: with a vanishing pull, distill_coef="qdagger_0.03" / "qdagger_0.1", 300 / 402 on seed 0), 20 evaluation episodes.
SCRATCH_NOISE = 100.0
#: Env steps of the weak-teacher test (student and control alike): four of PPO's default rollouts. Measured (seed 0,
#: this test's evaluation; the bundled weak teacher, 228, in brackets) with λ_0 = 0.1 from the first update (the default
#: before the stall gate): after 2 / 3 / 4 / 6 / 9 updates the student was at 95 / 292 / 342 / 212 / 442 (361 / 341 /
#: 327 / 337 / 431), PPO from scratch at 325 / 292 / 414 / 424 / 479; over seeds 0-4 the student of this teacher was
#: 140-220 below PPO from scratch after 1-3 updates. With the gate (docs/guide/distill_ppo.md "Which default") no seed
#: of 0-4 stalls within 6 updates on this teacher, and the student is PPO from scratch.
DEFAULTS_BUDGET = 4 * 2048


@pytest.mark.learning
def test_defaults_from_a_weak_teacher_keep_up_with_ppo_from_scratch(weak_teacher):
    """
    Issue 20: from a weak teacher, with nothing but ``teacher=`` and ``seed=`` (SB3's PPO defaults), DistillPPO's
    student ends within PPO's noise of PPO from scratch (the same defaults, seed and budget: the control) and above its
    teacher. The default before issue 20 (λ_0 = 1 for every teacher) was at 90 where PPO from scratch was at 468 (10k
    steps, seed 0); the default now pulls towards a teacher below the reward threshold only once the student stalls.
    (This replaces a test of the same comparison with rl-zoo3's settings and 30,000 steps: the reincarnation suite
    measures those over 5 seeds.)
    """
    student = DistillPPO("MlpPolicy", "CartPole-v1", teacher=weak_teacher, seed=0).learn(DEFAULTS_BUDGET)
    teacher_return = student.teacher_reference_returns()[1]  # measured by the student at learn(): 10 episodes
    assert 30 < teacher_return < 250, "the weak teacher must be weak, but not random"
    assert student.distill_coef_choice is not None and "is below CartPole-v1's reward threshold" in student.distill_coef_choice
    scratch_score = _score(PPO("MlpPolicy", "CartPole-v1", seed=0).learn(DEFAULTS_BUDGET))
    student_score = _score(student)
    assert student_score >= scratch_score - SCRATCH_NOISE, f"student {student_score} vs PPO from scratch {scratch_score}"
    assert student_score >= teacher_return + 100, f"student {student_score} vs its teacher {teacher_return}"


#: Env steps of the stuck-student test: PPO's first 8 rollouts. On Acrobot-v1 with SB3's PPO defaults, seed 0 is one of
#: the two seeds of 0-9 whose training episodes all end at −500 for 20k steps (docs/guide/distill_ppo.md "Which default").
STUCK_BUDGET = 8 * 2048


@pytest.mark.learning
def test_defaults_pull_a_stuck_student_of_a_weak_teacher_past_ppo_from_scratch():
    """
    Issue 20, the other side of the stall gate: a student that does not learn on its own gets its weak teacher's pull.
    On Acrobot-v1 (seed 0) PPO from scratch, the control (same defaults, seed and budget), never leaves −500; the
    student is PPO for its first STALL_PATIENCE updates, then stalls (its score sets no new best), is pulled towards
    the bundled weak teacher (−330 to −370, below Acrobot's threshold −100) and leaves −500: above PPO from scratch and
    above its teacher. Measured: the pull at updates 5 and 6 (λ = 0.1), the student's greedy return −119 after 8.
    """
    student = DistillPPO("MlpPolicy", "Acrobot-v1", teacher="dqn/Acrobot-v1@weak", seed=0)
    coefs: list[float] = []
    original = student.current_distill_coef

    def recorded() -> float:
        coefs.append(original())
        return coefs[-1]

    student.current_distill_coef = recorded  # type: ignore[method-assign]
    student.learn(STUCK_BUDGET)
    assert student.distill_coef_choice is not None and "is below Acrobot-v1's reward threshold" in student.distill_coef_choice
    assert coefs[:STALL_PATIENCE] == [0.0] * STALL_PATIENCE and max(coefs) > 0, coefs  # waited, then pulled
    teacher_return = student.teacher_reference_returns()[1]
    scratch_score = _score(PPO("MlpPolicy", "Acrobot-v1", seed=0).learn(STUCK_BUDGET), 10, "Acrobot-v1")
    student_score = _score(student, 10, "Acrobot-v1")
    assert student_score >= scratch_score + SCRATCH_NOISE, f"student {student_score} vs PPO from scratch {scratch_score}"
    assert student_score > teacher_return, f"student {student_score} vs its teacher {teacher_return}"


def test_default_coef_chooses_from_the_teachers_return(teachers):
    """The default distill_coef takes λ_0 = 1 for a teacher at its env's reward threshold, 0.1 below it, and says so."""
    weak = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 100.0), **TINY)
    assert weak.distill_coef_choice is None
    weak.learn(64)
    assert weak._coef_value == AUTO_COEF_CHOICES[1]
    assert weak.distill_coef_choice.startswith(f"distill_coef='auto' chose QDagger's rule with λ_0 = {AUTO_COEF_CHOICES[1]:g}")
    assert "100.0 is below CartPole-v1's reward threshold 475" in weak.distill_coef_choice
    strong = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 500.0), **TINY)
    strong.learn(64)
    assert "500.0 reaches CartPole-v1's reward threshold 475" in strong.distill_coef_choice
    assert strong._coef_value == AUTO_COEF_CHOICES[0]
    for explicit_coef, initial in (("qdagger_0.5", 0.5), ("qdagger", 1.0)):  # an explicit rule keeps its λ_0
        kwargs = dict(TINY, distill_coef=explicit_coef, reference_returns=(20.0, 100.0))
        explicit = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], **kwargs)
        explicit.learn(64)
        assert explicit.distill_coef_choice is None and explicit._coef_value == initial


def test_stall_gate_answers_from_the_students_best_score():
    """distill_coef="auto"'s gate for a weak teacher: the pull comes once the student's score sets no new best twice."""
    gate = StallGate(patience=2)
    episodes = [{"r": index} for index in range(8)]  # stand-ins for the latest episode's info dict
    assert not gate.stalls(None, None)  # nothing scored yet
    assert not gate.stalls(0.2, episodes[0])  # the first score only sets the bar: the first updates are PPO's alone
    assert not gate.stalls(0.5, episodes[1])  # a new best: the student improves on its own
    assert not gate.stalls(0.4, episodes[2])  # below its best once
    assert not gate.stalls(0.3, episodes[2])  # no new episode since: not a new score
    assert gate.stalls(0.5, episodes[3])  # back at its best, not above it: twice without a new best
    assert gate.stalls(0.5, episodes[3])  # asked again: the same answer
    assert not gate.stalls(0.6, episodes[4])  # a new best ends the stall
    stuck = StallGate(patience=2)  # every episode the same failure: the same score, new episodes
    assert [stuck.stalls(0.0, episode) for episode in episodes[:4]] == [False, False, True, True]
    once = StallGate(patience=1)
    assert not once.stalls(0.2, episodes[0]) and once.stalls(0.2, episodes[1])
    with pytest.raises(ValueError, match="patience must be >= 1"):
        StallGate(patience=0)


def _set_student_returns(model: DistillPPO, returns: list[float]) -> None:
    model.ep_info_buffer = deque({"r": value, "l": 1, "t": 0.0} for value in returns)


def test_default_coef_waits_for_a_stall_of_a_weak_teachers_student(teachers):
    """
    A weak teacher (below the reward threshold) is pulled towards only after a rollout in which the student's score
    sets no new best; a teacher that solves the env from the first update; an explicit rule always.
    """
    weak = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 100.0), **TINY)
    weak.learn(64)
    assert weak._auto_waits_for_a_stall and "only once the student's score has set no new best" in weak.distill_coef_choice
    weak._auto_stall_gate = None  # as before the first rollout
    stalled = 0.1 * (1 - 30 / 80)  # λ_0 · (1 − s), s = (50 − 20) / (100 − 20)
    scores = [(40.0, 0.0), (60.0, 0.0)] + [(value, 0.0) for value in (45.0, 55.0, 60.0)] + [(50.0, stalled)]
    assert len(scores) == 2 + STALL_PATIENCE  # the bar, a new best, then STALL_PATIENCE scores without a new best
    for returns, expected in (([value] * 10, coef) for value, coef in scores):
        _set_student_returns(weak, returns)
        assert weak.current_distill_coef() == pytest.approx(expected)
    assert weak.current_distill_coef() == pytest.approx(stalled)  # no new episode: the same answer
    _set_student_returns(weak, [70.0] * 10)  # a new best (60 was): alone again
    assert weak.current_distill_coef() == 0.0
    # (Without its teacher phase, whose episodes would not score the student: test_teacher_phase_episodes_... below.)
    strong = DistillPPO(
        "MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 500.0), teacher_rollout_steps=0, **TINY
    )
    strong.learn(64)
    assert not strong._auto_waits_for_a_stall and "from the first update" in strong.distill_coef_choice
    explicit = DistillPPO(
        "MlpPolicy",
        "CartPole-v1",
        teacher=teachers["dqn"],
        distill_coef="qdagger_0.1",
        reference_returns=(20.0, 100.0),
        **TINY,
    )
    explicit.learn(64)
    for model, initial in ((strong, 1.0), (explicit, 0.1)):
        _set_student_returns(model, [40.0] * 10)  # a first score: pulled at once
        assert model.current_distill_coef() == pytest.approx(initial * (1 - (40 - 20) / (model.reference_returns[1] - 20)))
    assert "_auto_waits_for_a_stall" in weak._excluded_save_params()  # chosen again at each learn()


def test_stall_gate_is_saved_with_the_model(teachers, tmp_path):
    """A resumed run goes on counting the scores without a new best (the gate is saved, without its last episode)."""
    weak = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 100.0), **TINY)
    weak.learn(64)
    without_new_best = [45.0, 55.0, 60.0][: STALL_PATIENCE - 1]  # one score short of a stall
    for value in [40.0, 60.0, *without_new_best]:
        _set_student_returns(weak, [value] * 10)
        assert weak.current_distill_coef() == 0.0
    weak.save(tmp_path / "student")
    loaded = DistillPPO.load(tmp_path / "student", env=gym.make("CartPole-v1"), teacher=teachers["dqn"])
    gate = loaded._stall_gate()
    assert (gate.best, gate.without_progress, gate.latest) == (weak._stall_gate().best, STALL_PATIENCE - 1, None)
    loaded._choose_auto_coef()  # what learn() does first: λ_0 = 0.1 and the gate for this teacher
    _set_student_returns(loaded, [50.0] * 10)  # the last score without a new best that makes a stall
    assert loaded.current_distill_coef() == pytest.approx(0.1 * (1 - 30 / 80))


def _teacher_agreement_of_actions(model: DistillPPO, teacher) -> float:
    """
    The share of the rollout buffer's actions that are the teacher's greedy action on the stored state (a DQN teacher;
    states where its two Q-values tie within float error, which a batch of another size may break the other way, left out).
    """
    observations = model.rollout_buffer.observations.reshape(-1, *model.observation_space.shape)
    teacher_actions, _ = teacher.predict(observations, deterministic=True)
    with th.no_grad():
        q_values = teacher.q_values(th.as_tensor(observations)).numpy()
    clear = np.abs(q_values[:, 0] - q_values[:, 1]) > 1e-3
    return float(np.mean((model.rollout_buffer.actions.reshape(-1) == teacher_actions)[clear]))


def test_teacher_plays_the_first_rollout_of_a_strong_teachers_student(teachers, tmp_path):
    """
    distill_coef="auto" with a teacher that solves the env: the teacher plays the first rollout (counted in
    num_timesteps, its actions in the buffer, no PPO surrogate on them), the student is pre-trained on it by the teacher
    term, and the choice says so; then the student acts. A weak teacher and teacher_rollout_steps=0: no teacher phase.
    """
    strong = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 500.0), **TINY)
    strong.learn(64)
    assert strong.num_timesteps == strong.teacher_steps_played == 64 and strong.pretrained
    assert _teacher_agreement_of_actions(strong, teachers["dqn"]) == 1.0
    assert "the teacher plays the first 64 env steps" in strong.distill_coef_choice
    assert f"for {AUTO_PRETRAIN_EPOCHS * 2} gradient steps" in strong.distill_coef_choice  # 50 passes of 64 / 32
    strong.learn(64, reset_num_timesteps=False)  # the student's rollout: the teacher does not play again
    assert strong.num_timesteps == 128 and strong.teacher_steps_played == 64 and not strong._rollout_played_by_teacher
    assert _teacher_agreement_of_actions(strong, teachers["dqn"]) < 1.0
    logged = DistillPPO(
        "MlpPolicy",
        "CartPole-v1",
        teacher=teachers["dqn"],
        reference_returns=(20.0, 500.0),
        pretrain_gradient_steps=10,
        **TINY,
    )
    teachers_update, students_update = _logged(logged, tmp_path, 192).iloc[:2].to_dict("records")
    assert teachers_update["train/teacher_rollout"] == 1 and teachers_update["train/policy_gradient_loss"] == 0
    assert teachers_update["train/pretrain_teacher_agreement"] > 0.5 and teachers_update["train/distill_coef"] == 1.0
    assert np.isnan(students_update["train/teacher_rollout"]) and students_update["train/policy_gradient_loss"] != 0

    weak = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 100.0), **TINY)
    off = DistillPPO(
        "MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 500.0), teacher_rollout_steps=0, **TINY
    )
    for model in (weak, off):
        model.learn(64)
        assert model.teacher_steps_played == 0 and not model.pretrained and "teacher plays" not in model.distill_coef_choice
    # Explicit: whole rollouts (100 -> 128), with any distill_coef, and the given number of pre-training steps.
    explicit = DistillPPO(
        "MlpPolicy",
        "CartPole-v1",
        teacher=teachers["dqn"],
        distill_coef=0.5,
        teacher_rollout_steps=100,
        pretrain_gradient_steps=3,
        **TINY,
    )
    explicit.learn(128)
    assert explicit.teacher_steps_played == 128 and explicit._pretrain_steps == 3 and explicit.pretrained
    assert _teacher_agreement_of_actions(explicit, teachers["dqn"]) == 1.0
    # A continuous teacher acts too, in the squashed student's [-1, 1]
    pendulum = DistillPPO(
        "MlpPolicy",
        "Pendulum-v1",
        teacher=teachers["sac"],
        distill_coef=0.5,
        teacher_rollout_steps=64,
        pretrain_gradient_steps=0,
        **TINY,
    )
    pendulum.learn(64)
    observations = pendulum.rollout_buffer.observations.reshape(-1, 3)
    expected = pendulum.policy.scale_action(teachers["sac"].predict(observations, deterministic=True)[0])
    np.testing.assert_allclose(pendulum.rollout_buffer.actions.reshape(-1, 1), expected, atol=1e-5)


def test_teacher_phase_episodes_do_not_score_the_student(teachers, tmp_path):
    """QDagger's score after a teacher phase counts only episodes the teacher played no step of; the phase is saved."""
    strong = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 500.0), **TINY)
    strong.learn(64)
    assert strong._teacher_in_episode.tolist() == [True]  # the teacher's episode goes on into the student's rollout
    episode = {"episode": {"r": 500.0, "l": 500, "t": 0.0}}
    strong._update_info_buffer([episode], np.array([True]))  # it ends: not the student's
    assert strong._student_returns() == [] and strong.student_score() is None
    strong._update_info_buffer([{"episode": {"r": 60.0, "l": 60, "t": 0.0}}], np.array([True]))
    assert strong._student_returns() == [60.0] and strong.student_score() == pytest.approx(40 / 480)
    strong.save(tmp_path / "student")
    loaded = DistillPPO.load(tmp_path / "student", env=gym.make("CartPole-v1"), teacher=teachers["dqn"])
    assert (loaded.teacher_steps_played, loaded.pretrained, loaded._student_returns()) == (64, True, [60.0])
    assert loaded.teacher_rollout_steps == "auto" and loaded._teacher_in_episode is None
    loaded.learn(64)  # a resumed run: the teacher does not play again
    assert loaded.teacher_steps_played == 64 and not loaded._rollout_played_by_teacher
    # A model that learned before the teacher phase existed (nothing played, updates done) does not start one.
    resumed = DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 500.0), **TINY)
    resumed._n_updates = 2
    resumed.learn(64)
    assert resumed.teacher_steps_played == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(teacher_rollout_steps=-1), ValueError, "teacher_rollout_steps must be >= 0"),
        (dict(teacher_rollout_steps="always"), ValueError, "Unknown teacher_rollout_steps='always'"),
        (dict(teacher_rollout_steps=1.5), TypeError, "teacher_rollout_steps=1.5 is not an int"),
        (dict(pretrain_gradient_steps=True), TypeError, "pretrain_gradient_steps=True is not an int"),
        (dict(teacher_rollout_steps=0, pretrain_gradient_steps=10), ValueError, "teacher_rollout_steps=0 plays none"),
    ],
)
def test_bad_teacher_phase(kwargs, error, match):
    # Raised before the teacher is even loaded.
    with pytest.raises(error, match=match):
        DistillPPO("MlpPolicy", "CartPole-v1", teacher="no/such-teacher", **kwargs)


# ---------------------------------------------------------------------------------------------- Optuna
def test_optuna_sampler_and_converter(teachers):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    expected_modes = {"qdagger": "qdagger", "linear": "schedule", "constant": "constant"}
    for mode in expected_modes:
        study.enqueue_trial({"distill_coef_rule": mode})
        trial = study.ask()
        params = sample_distill_ppo_params(trial, 2, 1, {})
        # rl-zoo3 rebuilds a trial's keyword arguments from trial.params alone (--trial-id, load_trial).
        assert convert_distill_ppo_params(trial.params) == params
        assert parse_distill_coef(params["distill_coef"])[0] == expected_modes[mode]
        study.tell(trial, 0.0)
        params.update(n_steps=64, batch_size=32, n_epochs=1)  # a tiny budget; the rest as sampled
        DistillPPO("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], reference_returns=(20.0, 500.0), **params).learn(64)
    with pytest.raises(ValueError, match="distill_coef_rule"):
        convert_distill_ppo_params({**trial.params, "distill_coef_rule": "cosine"})


# ---------------------------------------------------------------------------------------------- rl-zoo3
HYPERPARAMS = Path(__file__).resolve().parents[1] / "sb3_distill" / "hyperparams" / "distill_ppo.yml"
BUNDLED_ENVS = ["CartPole-v1", "Acrobot-v1", "LunarLander-v3", "Pendulum-v1"]


@pytest.mark.parametrize("env_id", BUNDLED_ENVS)
def test_packaged_hyperparams_build_with_rl_zoo3(env_id, tmp_path, monkeypatch):
    """rl-zoo3's own ExperimentManager reads the packaged entry (schedules, normalize, n_envs, teacher) and builds it."""
    from rl_zoo3 import utils
    from rl_zoo3.exp_manager import ExperimentManager

    monkeypatch.chdir(tmp_path)  # no ./logs to find a teacher in: the bundled one is used
    monkeypatch.delenv("SB3_DISTILL_ZOO", raising=False)
    monkeypatch.setitem(utils.ALGOS, "distill_ppo", DistillPPO)
    manager = ExperimentManager(
        argparse.Namespace(), "distill_ppo", env_id, str(tmp_path / "logs"), config=str(HYPERPARAMS), device="cpu"
    )
    model, _ = manager.setup_experiment()
    assert isinstance(model, DistillPPO) and "bundled" in model.teachers[0].source
    assert model._coef_mode == "qdagger"
    if env_id == "Acrobot-v1":
        assert model.get_vec_normalize_env() is not None
    if env_id == "CartPole-v1":
        model.learn(512)
    model.env.close()


def test_packaged_hyperparams_entries():
    entries = yaml.safe_load(HYPERPARAMS.read_text())
    assert sorted(entries) == sorted([*BUNDLED_ENVS, "HalfCheetah-v5"])
    assert entries["HalfCheetah-v5"]["teacher"] == "sac/HalfCheetah-v3"  # from the user's zoo folder, not bundled
    for entry in entries.values():
        parse_distill_coef(entry["distill_coef"])
