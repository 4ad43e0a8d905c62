"""PolicyDistill: API coverage with tiny budgets (teacher kinds, data modes, save/load, callbacks, VecEnv, bad input)."""

import json
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import ARS, TQC
from stable_baselines3 import A2C, PPO, TD3
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill import PolicyDistill, load_teacher
from sb3_distill.errors import IncompatibleTeacherError, TeacherError
from sb3_distill.policy_distill import (
    DatasetError,
    DatasetNotFoundError,
    OnlineDistillCallback,
    SquashedActorCriticPolicy,
    collect_teacher_dataset,
    load_teacher_dataset,
)

TINY = dict(learning_starts=50, buffer_size=1_000, batch_size=32, learning_rate=3e-3, seed=0)
SMALL_NET = dict(net_arch=dict(pi=[32], vf=[32]))


# ---------------------------------------------------------------------------------------------- teachers
@pytest.fixture(scope="module")
def teachers(zoo_dir: Path):
    """One teacher of every kind: the shared zoo's files, and tiny ones trained here where no file exists."""
    tiny_off_policy = dict(learning_starts=50, buffer_size=500, seed=0)
    td3 = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=[32]), **tiny_off_policy).learn(150)
    tqc = TQC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=[32], n_critics=2, n_quantiles=5), **tiny_off_policy)
    a2c = A2C("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[32]), seed=0).learn(100)
    ppo_continuous = PPO("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=64, policy_kwargs=dict(net_arch=[32]), seed=0)
    return {
        "dqn": load_teacher(zoo_dir / "dqn" / "CartPole-v1_1"),
        "qrdqn": load_teacher(zoo_dir / "qrdqn" / "CartPole-v1_1"),
        "ppo": load_teacher(zoo_dir / "ppo" / "CartPole-v1_1"),
        "a2c": load_teacher(a2c),
        "sac": load_teacher(zoo_dir / "sac" / "Pendulum-v1_1"),
        "td3": load_teacher(td3),
        "tqc": load_teacher(tqc.learn(150)),
        "ppo_continuous": load_teacher(ppo_continuous.learn(64)),
        "ppo_mountaincar": load_teacher(zoo_dir / "ppo" / "MountainCar-v0_1"),
    }


ENV_OF = {"dqn": "CartPole-v1", "qrdqn": "CartPole-v1", "ppo": "CartPole-v1", "a2c": "CartPole-v1"}
ENV_OF.update({"sac": "Pendulum-v1", "td3": "Pendulum-v1", "tqc": "Pendulum-v1", "ppo_continuous": "Pendulum-v1"})


def _raw_states(env_id: str, n: int = 256, seed: int = 0) -> np.ndarray:
    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    states, obs = [], env.reset(seed=seed)[0]
    for _ in range(n):
        states.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs = env.reset()[0]
    return np.array(states)


def _distance_to_teacher(model: PolicyDistill, teacher, states: np.ndarray) -> float:
    """Discrete: share of states where the greedy actions differ; continuous: mean |a_S - a_T| / (high - low)."""
    student_actions, _ = model.predict(states, deterministic=True)
    teacher_actions, _ = teacher.predict(states, deterministic=True)
    if isinstance(model.action_space, gym.spaces.Discrete):
        return float(np.mean(student_actions != teacher_actions))
    width = model.action_space.high - model.action_space.low
    return float(np.mean(np.abs(student_actions - teacher_actions) / width))


# ---------------------------------------------------------------------------------------------- every teacher kind
@pytest.mark.parametrize(
    "kind, loss, squashed",
    [
        ("dqn", "kl", False),
        ("qrdqn", "kl", False),
        ("ppo", "kl", False),
        ("a2c", "kl", False),
        ("sac", "kl", True),
        ("tqc", "kl", True),
        ("td3", "mse", True),
        ("ppo_continuous", "kl", False),
    ],
)
def test_every_teacher_kind(teachers, kind, loss, squashed):
    teacher = teachers[kind]
    model = PolicyDistill("MlpPolicy", ENV_OF[kind], teacher=teacher, policy_kwargs=SMALL_NET, **TINY)
    assert model._terms[0].distill_loss == loss
    assert model.policy.squash_output == squashed
    states = _raw_states(ENV_OF[kind])
    before = _distance_to_teacher(model, teacher, states)
    model.learn(400)
    after = _distance_to_teacher(model, teacher, states)
    assert model._n_updates > 0
    assert np.isfinite(model.logger.name_to_value["train/loss"])
    assert after < before, f"the student did not move towards its {kind} teacher ({before:.3f} -> {after:.3f})"


@pytest.mark.parametrize("loss", ["nll", "kl"])
@pytest.mark.parametrize("direction", ["teacher_student", "student_teacher"])
def test_explicit_losses_and_directions(teachers, loss, direction):
    for kind in ("ppo", "sac"):
        model = PolicyDistill(
            "MlpPolicy",
            ENV_OF[kind],
            teacher=teachers[kind],
            distill_loss=loss,
            kl_direction=direction,
            distill_value_coef=0.0,
            **TINY,
        )
        model.learn(120)
        assert model._terms[0].distill_loss == loss
        assert np.isfinite(model.logger.name_to_value["train/policy_loss"])
        assert model.logger.name_to_value["train/value_loss"] == 0.0


def test_value_only_distillation_fits_the_teacher_critic(teachers):
    teacher = teachers["ppo"]
    model = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teacher, policy_coef=0.0, distill_value_coef=1.0, **TINY)
    states = _raw_states("CartPole-v1")

    def value_error() -> float:
        with th.no_grad():
            student_values = model.policy.predict_values(th.as_tensor(states)).flatten()
        return float(((student_values - teacher.values(states)) ** 2).mean())

    before = value_error()
    model.learn(600)
    assert value_error() < 0.5 * before


def test_several_teachers_of_different_algorithms_and_weights(teachers):
    model = PolicyDistill(
        "MlpPolicy", "CartPole-v1", teacher=[teachers["ppo"], teachers["dqn"]], teacher_weights=[0.25, 0.75], **TINY
    )
    assert [term.weight for term in model._terms] == [0.25, 0.75]
    assert [term.temperature for term in model._terms] == [1.0, 0.01]  # a policy teacher, a Q-value teacher
    model.learn(150)
    assert np.isfinite(model.logger.name_to_value["train/loss"])


def test_zero_weight_teacher_does_not_count(teachers):
    """w_i = 0 removes a teacher from the loss: a student with weights (1, 0) trains exactly like one with teacher 0."""
    single = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"], teacher_weights=[1.0], **TINY).learn(120)
    paired = PolicyDistill(
        "MlpPolicy", "CartPole-v1", teacher=[teachers["ppo"], teachers["dqn"]], teacher_weights=[1.0, 0.0], **TINY
    ).learn(120)
    for a, b in zip(single.policy.parameters(), paired.policy.parameters(), strict=True):
        assert th.allclose(a, b, atol=1e-6)


# ---------------------------------------------------------------------------------------------- data
def test_data_policy_teacher_plays_the_teacher(teachers):
    teacher = teachers["dqn"]  # greedy whether sampled or not, so every stored action is checkable
    model = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teacher, data_policy="teacher", **TINY).learn(200)
    size = model.replay_buffer.size()
    obs = model.replay_buffer.observations[:size, 0]
    actions = model.replay_buffer.actions[:size, 0, 0]
    assert np.array_equal(actions, teacher.predict(obs)[0])
    student = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teacher, data_policy="student", learning_starts=10_000, seed=0)
    student.learn(200)  # no gradient step: an untrained student, which plays its own (near uniform) policy
    obs = student.replay_buffer.observations[:200, 0]
    assert np.mean(student.replay_buffer.actions[:200, 0, 0] == teacher.predict(obs)[0]) < 0.8


def test_data_policy_share_and_schedule(teachers):
    schedule = LinearSchedule(1.0, 0.0, 0.5)
    model = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], data_policy=schedule, **TINY)
    model._current_progress_remaining = 1.0
    assert model.teacher_share() == 1.0
    model._current_progress_remaining = 0.75
    assert model.teacher_share() == pytest.approx(0.5)
    model._current_progress_remaining = 0.2
    assert model.teacher_share() == 0.0
    model.learn(200)
    assert model.logger.name_to_value["train/teacher_share"] == 0.0
    mixed = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["dqn"], data_policy=0.3, **TINY)
    assert mixed.teacher_share() == 0.3


def test_vec_env_with_several_envs_and_vecnormalize(teachers):
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=4, seed=0), norm_reward=False)
    model = PolicyDistill("MlpPolicy", env, teacher=teachers["ppo"], data_policy=0.5, train_freq=2, **TINY)
    model.learn(400)
    assert model.num_timesteps >= 400
    assert model.replay_buffer.n_envs == 4
    # The buffer keeps raw observations (the teacher's input); the student's env normalizes its own.
    stored = model.replay_buffer.observations[: model.replay_buffer.pos]
    assert np.all(np.abs(stored[..., 2]) <= 0.21)  # CartPole's raw pole angle never exceeds 0.21 rad


def test_dict_observations(tmp_path):
    env = SimpleMultiObsEnv(random_start=False)
    teacher_model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=64, seed=0).learn(64)
    model = PolicyDistill("MultiInputPolicy", env, teacher=teacher_model, **TINY)
    model.learn(100)
    model.save(tmp_path / "student")
    obs = env.reset()[0]
    loaded = PolicyDistill.load(tmp_path / "student")
    assert loaded.predict(obs, deterministic=True)[0] == model.predict(obs, deterministic=True)[0]


def test_cnn_policy():
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=True)
    teacher_model = PPO("CnnPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0)
    model = PolicyDistill("CnnPolicy", env, teacher=teacher_model, learning_starts=20, buffer_size=100, batch_size=8, seed=0)
    model.learn(40)
    assert model._n_updates > 0


# ---------------------------------------------------------------------------------------------- save / load, callbacks
def test_save_load_without_teacher(teachers, tmp_path):
    model = PolicyDistill("MlpPolicy", "Pendulum-v1", teacher=teachers["sac"], policy_kwargs=SMALL_NET, **TINY).learn(120)
    path = tmp_path / "student.zip"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
        assert not {"teacher", "teachers", "_terms", "dataset", "replay_buffer"} & set(data)
        expected = (".pth", "data", "_stable_baselines3_version", "system_info.txt")
        assert all(entry.endswith(expected) for entry in archive.namelist())
    states = _raw_states("Pendulum-v1", 32)
    loaded = PolicyDistill.load(path)
    assert isinstance(loaded.policy, SquashedActorCriticPolicy)
    assert np.allclose(loaded.predict(states, deterministic=True)[0], model.predict(states, deterministic=True)[0])
    # SB3's pattern: load(path, env).learn() finds the teacher again from the saved spec.
    reloaded = PolicyDistill.load(path, env=gym.make("Pendulum-v1"))
    assert [teacher.source_path for teacher in reloaded.teachers] == [teachers["sac"].source_path]
    reloaded.learn(60)
    resumed = PolicyDistill.load(path, env=gym.make("Pendulum-v1"), teacher=teachers["sac"])
    resumed.learn(60)
    assert resumed._n_updates > 0


def test_refuses_to_save_over_the_teacher(zoo_dir, tmp_path):
    model = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=zoo_dir / "ppo" / "CartPole-v1_1", **TINY)
    with pytest.raises(TeacherError, match="over its teacher"):
        model.save(zoo_dir / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip")


def test_eval_callback(teachers, tmp_path):
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    callback = EvalCallback(
        eval_env, eval_freq=100, n_eval_episodes=2, log_path=str(tmp_path), best_model_save_path=str(tmp_path), verbose=0
    )
    PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"], **TINY).learn(300, callback=callback)
    evaluations = np.load(tmp_path / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [100, 200, 300]
    assert (tmp_path / "best_model.zip").is_file()


# ---------------------------------------------------------------------------------------------- PPO / A2C fine-tuning
@pytest.mark.parametrize("kind", ["ppo", "sac"])
def test_to_ppo_starts_from_the_student(teachers, kind):
    model = PolicyDistill("MlpPolicy", ENV_OF[kind], teacher=teachers[kind], policy_kwargs=SMALL_NET, **TINY).learn(150)
    ppo = model.to_ppo(n_steps=64, batch_size=32, seed=0)
    assert type(ppo.policy) is type(model.policy)
    states = _raw_states(ENV_OF[kind], 64)
    assert np.array_equal(ppo.predict(states, deterministic=True)[0], model.predict(states, deterministic=True)[0])
    th.manual_seed(3)
    sampled_student = model.predict(states, deterministic=False)[0]
    th.manual_seed(3)
    assert np.array_equal(ppo.predict(states, deterministic=False)[0], sampled_student)
    with th.no_grad():
        ppo_distribution = ppo.policy.get_distribution(th.as_tensor(states)).distribution
        student_distribution = model.policy.get_distribution(th.as_tensor(states)).distribution
    for parameter in ("probs",) if kind == "ppo" else ("loc", "scale"):
        assert th.equal(getattr(ppo_distribution, parameter), getattr(student_distribution, parameter))
    ppo.learn(64)  # PPO runs on the distilled policy (squashed ones included)
    assert ppo.num_timesteps == 64
    a2c = model.to_a2c(n_steps=8)
    assert np.array_equal(a2c.predict(states, deterministic=True)[0], model.predict(states, deterministic=True)[0])
    a2c.learn(16)


def test_to_ppo_refuses_another_architecture(teachers):
    model = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"], **TINY)
    with pytest.raises(ValueError, match="policy_kwargs is fixed"):
        model.to_ppo(policy_kwargs=dict(net_arch=[8]))


# ---------------------------------------------------------------------------------------------- offline
def test_collect_and_learn_offline_without_env(teachers, tmp_path):
    teacher = teachers["ppo_mountaincar"]  # a VecNormalize teacher: the dataset must hold raw observations
    env = VecNormalize(make_vec_env("MountainCar-v0", n_envs=2, seed=0))
    buffer = collect_teacher_dataset(teacher, env, 300, tmp_path / "data", seed=0)
    assert (tmp_path / "data.npz").is_file() and buffer.size() == 150  # 2 envs x 150 steps
    dataset = load_teacher_dataset(tmp_path / "data.npz", env.observation_space, env.action_space)
    stored = dataset.observations[: dataset.size()]
    assert np.all((stored[..., 0] >= -1.2) & (stored[..., 0] <= 0.6)) and np.all(np.abs(stored[..., 1]) <= 0.07)
    assert np.array_equal(dataset.actions[: dataset.size(), :, 0].ravel() >= 0, np.ones(300, dtype=bool))

    model = PolicyDistill("MlpPolicy", None, teacher=teacher, dataset=tmp_path / "data", **TINY)
    model.learn_offline(100)
    assert model.num_timesteps == 0 and model._n_updates == 100
    with pytest.raises(ValueError, match="has none"):
        model.learn(10)


class _CountingEnv(gym.Wrapper):
    resets = steps = 0

    def reset(self, **kwargs):
        _CountingEnv.resets += 1
        return super().reset(**kwargs)

    def step(self, action):
        _CountingEnv.steps += 1
        return super().step(action)


def test_learn_offline_never_touches_the_env(teachers, tmp_path):
    collect_teacher_dataset(teachers["ppo"], "CartPole-v1", 200, tmp_path / "data.pkl", random_action_prob=0.5, seed=0)
    _CountingEnv.resets = _CountingEnv.steps = 0
    env = _CountingEnv(gym.make("CartPole-v1"))
    model = PolicyDistill("MlpPolicy", env, teacher=teachers["ppo"], dataset=tmp_path / "data.pkl", batch_size=32)
    # SB3's callbacks need the model to have an env; learn_offline() never steps nor resets it.
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    callback = EvalCallback(eval_env, eval_freq=10, n_eval_episodes=1, log_path=str(tmp_path), verbose=0)
    model.learn_offline(20, callback=callback)
    assert (_CountingEnv.resets, _CountingEnv.steps) == (0, 0)
    assert callback.n_calls == 20 and len(np.load(tmp_path / "evaluations.npz")["results"]) == 2


# ---------------------------------------------------------------------------------------------- online teacher
def test_online_distillation_while_the_teacher_learns():
    teacher_model = PPO("MlpPolicy", "CartPole-v1", n_steps=256, batch_size=64, n_epochs=4, seed=0)
    initial = [p.detach().clone() for p in teacher_model.policy.parameters()]
    student = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teacher_model, **TINY)
    callback = OnlineDistillCallback(student, train_freq=256, gradient_steps=200)
    teacher_model.learn(1024, callback=callback)
    # The teacher really learned (its parameters were not frozen by the student) ...
    assert all(p.requires_grad for p in teacher_model.policy.parameters())
    assert any(not th.equal(a, b) for a, b in zip(initial, teacher_model.policy.parameters(), strict=True))
    # ... the student saw its steps, and follows the latest teacher rather than the initial one.
    assert student.num_timesteps == 1024 and student._n_updates == 4 * 200
    assert student.teachers[0].policy is not teacher_model.policy
    states = _raw_states("CartPole-v1")
    final = load_teacher(PPO("MlpPolicy", "CartPole-v1", seed=0))
    final.policy.load_state_dict(teacher_model.policy.state_dict())
    assert _distance_to_teacher(student, final, states) < 0.15


def test_online_distillation_with_an_off_policy_teacher():
    tiny_td3 = dict(learning_starts=50, buffer_size=500, policy_kwargs=dict(net_arch=[32]), seed=0)
    teacher_model = TD3("MlpPolicy", "Pendulum-v1", **tiny_td3)
    student = PolicyDistill("MlpPolicy", "Pendulum-v1", teacher=teacher_model, **TINY)
    teacher_model.learn(200, callback=OnlineDistillCallback(student, train_freq=100))
    assert student.num_timesteps == 200 and student._n_updates == 200
    assert student.replay_buffer.size() == 200


def test_online_distillation_from_a_teacher_with_several_normalized_envs():
    env = VecNormalize(make_vec_env("MountainCar-v0", n_envs=4, seed=0))
    teacher_model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=1, seed=0)
    student = PolicyDistill("MlpPolicy", "MountainCar-v0", teacher=teacher_model, **TINY)  # one env: one row per step
    teacher_model.learn(256, callback=OnlineDistillCallback(student, train_freq=128, gradient_steps=10))
    assert student.num_timesteps == 256 and student.replay_buffer.size() == 256 and student._n_updates == 20
    # Raw observations from the teacher's VecNormalize env, and its statistics in the snapshot.
    stored = student.replay_buffer.observations[:256, 0]
    assert np.all((stored[:, 0] >= -1.2) & (stored[:, 0] <= 0.6)) and np.all(np.abs(stored[:, 1]) <= 0.07)
    assert np.allclose(student.teachers[0].obs_normalizer.obs_rms.mean, env.obs_rms.mean)


# ---------------------------------------------------------------------------------------------- bad input
def test_teachers_on_different_spaces(teachers):
    with pytest.raises(IncompatibleTeacherError, match="teachers act on different spaces"):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=[teachers["ppo"], teachers["ppo_mountaincar"]])
    with pytest.raises(IncompatibleTeacherError, match="does not fit this env"):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["ppo_mountaincar"])


@pytest.mark.parametrize(
    "weights, message",
    [
        ([1.0], "1 entries for 2 teacher"),
        ([1.0, -0.5], "finite and >= 0"),
        ([0.0, 0.0], "all zero"),
        ([1.0, np.nan], "finite"),
    ],
)
def test_bad_teacher_weights(teachers, weights, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        PolicyDistill(
            "MlpPolicy",
            "CartPole-v1",
            teacher=[teachers["ppo"], teachers["dqn"]],
            teacher_weights=weights,
            tensorboard_log=str(tmp_path / "tb"),
        )
    assert not any(tmp_path.iterdir())  # nothing written


def test_value_distillation_needs_a_critic():
    ars = ARS("LinearPolicy", "CartPole-v1", seed=0)
    with pytest.raises(IncompatibleTeacherError, match=r"needs a teacher with a critic.*distill_value_coef=0"):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=ars, distill_value_coef=0.5)
    PolicyDistill("MlpPolicy", "CartPole-v1", teacher=ars, **TINY).learn(60)  # distill_value_coef=0 by default


def test_discrete_teacher_for_continuous_student_and_reverse(teachers):
    with pytest.raises(IncompatibleTeacherError, match="A discrete teacher cannot teach a continuous student"):
        PolicyDistill("MlpPolicy", "Pendulum-v1", teacher=teachers["dqn"])
    with pytest.raises(IncompatibleTeacherError, match="A continuous teacher cannot teach a discrete student"):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["sac"])


def test_losses_that_do_not_fit_the_teacher(teachers):
    with pytest.raises(IncompatibleTeacherError, match="deterministic: use distill_loss='mse' or 'nll'"):
        PolicyDistill("MlpPolicy", "Pendulum-v1", teacher=teachers["td3"], distill_loss="kl")
    with pytest.raises(IncompatibleTeacherError, match="regresses continuous actions"):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"], distill_loss="mse")
    with pytest.raises(IncompatibleTeacherError, match="squashes its actions with tanh"):
        PolicyDistill("MlpPolicy", "Pendulum-v1", teacher=teachers["sac"], distill_loss="kl", squash_output=False)
    # Mixed families: 'auto' falls back to action regression for the teacher of the other kind.
    model = PolicyDistill("MlpPolicy", "Pendulum-v1", teacher=[teachers["sac"], teachers["ppo_continuous"]])
    assert [term.distill_loss for term in model._terms] == ["kl", "mse"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(distill_loss="l2"), "Unknown distill_loss"),
        (dict(distill_loss=["kl"]), "distill_loss has 1 entries for 2"),
        (dict(kl_direction="both"), "Unknown kl_direction"),
        (dict(temperature=0.0), "temperature must be > 0"),
        (dict(policy_coef=0.0, distill_value_coef=0.0), "not both 0"),
        (dict(distill_value_coef=-1.0), "must be >= 0"),
        (dict(data_policy="expert"), "Unknown data_policy"),
        (dict(data_policy=1.5), "must be in \\[0, 1\\]"),
        (dict(data_policy=LinearSchedule(2.0, 0.0, 1.0)), "must stay in \\[0, 1\\]"),
    ],
)
def test_bad_keywords(teachers, kwargs, message):
    with pytest.raises(ValueError, match=message):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=[teachers["ppo"], teachers["dqn"]], **kwargs)


def test_no_teacher():
    with pytest.raises(TeacherError, match="needs a teacher"):
        PolicyDistill("MlpPolicy", "CartPole-v1")


def test_bad_datasets(teachers, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"], dataset=tmp_path / "missing.pkl")
    collect_teacher_dataset(teachers["ppo"], "CartPole-v1", 100, tmp_path / "cartpole.pkl", seed=0)
    content = (tmp_path / "cartpole.pkl").read_bytes()
    (tmp_path / "truncated.pkl").write_bytes(content[: len(content) // 2])
    with pytest.raises(DatasetError, match="truncated"):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"], dataset=tmp_path / "truncated.pkl")
    (tmp_path / "other.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(DatasetError, match="truncated or not a dataset"):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"], dataset=tmp_path / "other.pkl")
    with pytest.raises(DatasetError, match="recorded on other spaces"):
        PolicyDistill("MlpPolicy", "MountainCar-v0", teacher=teachers["ppo_mountaincar"], dataset=tmp_path / "cartpole.pkl")
    with pytest.raises(DatasetError, match="recorded on other spaces"):
        PolicyDistill("MlpPolicy", None, teacher=teachers["ppo_mountaincar"], dataset=tmp_path / "cartpole.pkl")
    with pytest.raises(DatasetError, match="dataset="):
        PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teachers["ppo"]).learn_offline(10)


def test_collect_checks_the_teacher_before_playing(teachers, tmp_path):
    with pytest.raises(IncompatibleTeacherError, match="does not fit this env"):
        collect_teacher_dataset(teachers["ppo"], "MountainCar-v0", 100, tmp_path / "data.pkl")
    assert not (tmp_path / "data.pkl").exists()
