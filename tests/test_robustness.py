"""sb3_distill.robustness: the student's observation channel, perturbations, attacks, evaluate_robustness and its CLI."""

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import FrameStackObservation
from sb3_contrib import ARS
from stable_baselines3 import DQN
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

from sb3_distill import load_teacher
from sb3_distill.cli import main as cli_main
from sb3_distill.robustness import (
    TEACHER_OBSERVATION_KEY,
    ActionNoise,
    Compose,
    Delay,
    GaussianNoise,
    RobustnessError,
    StickyActions,
    StudentObservation,
    attack,
    differentiable_agent,
    evaluate_robustness,
    get_perturbation,
    hide_velocities,
    observation_scale,
    perturbed_env,
    plot_robustness,
    shift_dynamics,
)
from sb3_distill.robustness.evaluation import _env_factory


@pytest.fixture(scope="module")
def teacher():
    return load_teacher("dqn/CartPole-v1", device="cpu")


def hidden_cartpole() -> gym.Env:
    return StudentObservation(gym.make("CartPole-v1"), hide_velocities("CartPole-v1"))


# ------------------------------------------------------------------ the student's observation channel
def test_student_sees_the_transform_and_the_teacher_the_env() -> None:
    env = hidden_cartpole()
    assert env.observation_space.shape == (2,) and env.teacher_observation_space.shape == (4,)
    obs, info = env.reset(seed=0)
    assert np.array_equal(obs, info[TEACHER_OBSERVATION_KEY][[0, 2]])
    for _ in range(5):
        obs, _, _, _, info = env.step(env.action_space.sample())
        assert obs.shape == (2,) and np.array_equal(obs, info[TEACHER_OBSERVATION_KEY][[0, 2]])
    # Bounds come from the full space's, without the hidden dimensions
    full = env.teacher_observation_space
    assert np.array_equal(env.observation_space.high, full.high[[0, 2]])


def test_monitor_and_frame_stack_on_top_keep_the_teacher_observation() -> None:
    env = FrameStackObservation(Monitor(hidden_cartpole()), stack_size=3)
    obs, info = env.reset(seed=1)
    assert obs.shape == (3, 2) and info[TEACHER_OBSERVATION_KEY].shape == (4,)
    obs, _, _, _, info = env.step(1)
    assert np.array_equal(obs[-1], info[TEACHER_OBSERVATION_KEY][[0, 2]])
    assert env.get_wrapper_attr("teacher_observation_space").shape == (4,)


def test_vec_env_auto_reset_carries_terminal_and_reset_teacher_observations() -> None:
    venv = DummyVecEnv([lambda: Monitor(hidden_cartpole()) for _ in range(2)])
    assert [space.shape for space in venv.get_attr("teacher_observation_space")] == [(4,), (4,)]
    venv.seed(0)
    obs = venv.reset()
    for index in range(2):
        assert np.array_equal(obs[index], venv.reset_infos[index][TEACHER_OBSERVATION_KEY][[0, 2]])
    ends = 0
    for _ in range(200):  # always pushing right: episodes end within a few dozen steps
        obs, _, dones, infos = venv.step(np.array([1, 1]))
        for index in range(2):
            teacher_obs = infos[index][TEACHER_OBSERVATION_KEY]
            if dones[index]:
                ends += 1
                # the step's info: the teacher's view of the terminal observation; the reset's: of the new episode's
                assert np.array_equal(infos[index]["terminal_observation"], teacher_obs[[0, 2]])
                assert abs(teacher_obs[2]) > 0.2 or abs(teacher_obs[0]) > 2.4
                assert np.array_equal(obs[index], venv.reset_infos[index][TEACHER_OBSERVATION_KEY][[0, 2]])
            else:
                assert np.array_equal(obs[index], teacher_obs[[0, 2]])
    assert ends >= 4


def test_vec_normalize_and_vec_frame_stack_leave_the_teacher_observation_raw() -> None:
    venv = VecNormalize(DummyVecEnv([lambda: Monitor(hidden_cartpole()) for _ in range(2)]), norm_reward=False)
    stacked = VecFrameStack(venv, n_stack=2)
    stacked.seed(0)
    obs = stacked.reset()
    assert obs.shape == (2, 4)
    for _ in range(10):
        obs, _, dones, infos = stacked.step(np.array([0, 1]))
        raw = venv.get_original_obs()
        for index in range(2):
            teacher_obs = infos[index][TEACHER_OBSERVATION_KEY]
            assert teacher_obs.shape == (4,)  # one raw frame, not normalized, not stacked
            if not dones[index]:
                assert np.allclose(teacher_obs[[0, 2]], raw[index])
                assert not np.allclose(obs[index, 2:], teacher_obs[[0, 2]])  # the student's is normalized


def test_observation_space_given_or_inferred() -> None:
    env = StudentObservation(gym.make("CartPole-v1"), lambda obs: np.concatenate([obs, obs]))
    assert env.observation_space.shape == (8,) and np.isinf(env.observation_space.high).all()
    given = gym.spaces.Box(-1, 1, (4,))
    assert StudentObservation(gym.make("CartPole-v1"), np.tanh, given).observation_space is given
    assert StudentObservation(gym.make("CartPole-v1"), Delay(2)).observation_space == gym.make("CartPole-v1").observation_space
    with pytest.raises(TypeError, match="callable"):
        StudentObservation(gym.make("CartPole-v1"), "noise")  # type: ignore[arg-type]


# ------------------------------------------------------------------ transforms
def test_gaussian_noise_is_relative_to_the_scale_clipped_and_seeded() -> None:
    scale = np.array([1.0, 10.0, 0.0])
    noise = GaussianNoise(0.1, scale, seed=3)
    samples = np.stack([noise(np.zeros(3)) for _ in range(4000)])
    assert np.allclose(samples.std(axis=0), [0.1, 1.0, 0.0], rtol=0.06, atol=1e-12)
    again = GaussianNoise(0.1, scale, seed=3)
    assert np.array_equal(again(np.zeros(3)), samples[0])
    bounded = GaussianNoise(5.0, 1.0, gym.spaces.Box(-1, 1, (3,)), seed=0)
    assert np.abs(bounded(np.zeros(3, dtype=np.float32))).max() <= 1.0
    image = GaussianNoise(2.0, 255.0, gym.spaces.Box(0, 255, (4, 4), np.uint8), seed=0)(np.full((4, 4), 250, np.uint8))
    assert image.dtype == np.uint8 and image.max() == 255


def test_delay_and_compose() -> None:
    delay = Delay(2)
    assert [delay(i) for i in range(5)] == [0, 0, 0, 1, 2]
    delay.reset()
    assert delay(7) == 7
    env = StudentObservation(gym.make("CartPole-v1"), Compose(hide_velocities("CartPole-v1"), Delay(1)))
    obs, info = env.reset(seed=0)
    first = info[TEACHER_OBSERVATION_KEY][[0, 2]]
    obs, *_ = env.step(0)
    assert env.observation_space.shape == (2,) and np.array_equal(obs, first)
    with pytest.raises(ValueError, match="whole number"):
        Delay(1.5)  # type: ignore[arg-type]


def test_observation_scale() -> None:
    scale = observation_scale(lambda: gym.make("CartPole-v1"))
    assert np.isclose(scale[0], 4.8) and np.isclose(scale[2], 0.2095 * 2, atol=1e-3)  # bounds where finite
    assert 0.05 < scale[1] < 5 and 0.05 < scale[3] < 5  # the random rollout's std for the velocities
    assert np.array_equal(observation_scale(gym.make("CartPole-v1"), 2.0), 2.0)
    rollout = observation_scale(lambda: gym.make("CartPole-v1"), "rollout")
    assert rollout[0] < 1.0  # the cart stays near the centre, far inside its ±4.8 bounds
    with pytest.raises(ValueError, match="unbounded"):
        observation_scale(lambda: gym.make("CartPole-v1"), "bounds")


# ------------------------------------------------------------------ actions and dynamics
def test_action_noise_and_sticky_actions() -> None:
    env = ActionNoise(gym.make("CartPole-v1"), 1.0, seed=0)
    env.reset(seed=0)
    actions = [env.action(0) for _ in range(400)]
    assert 0.4 < np.mean(actions) < 0.6  # all random
    assert ActionNoise(gym.make("CartPole-v1"), 0.0).action(1) == 1
    box = ActionNoise(gym.make("Pendulum-v1"), 0.5, seed=0)
    noisy = np.stack([box.action(np.zeros(1, np.float32)) for _ in range(2000)])
    assert np.abs(noisy).max() <= 2.0 and 0.8 < noisy.std() < 1.0  # σ = 0.5 · 2, clipped at ±2
    sticky = StickyActions(gym.make("CartPole-v1"), 1.0, seed=0)
    sticky.reset(seed=0)
    sticky.step(0)
    sticky.step(1)
    assert sticky.previous == 0  # always the first action
    with pytest.raises(ValueError, match="out of range"):
        StickyActions(gym.make("CartPole-v1"), 1.5)


def test_dynamics_shifts() -> None:
    env = shift_dynamics(gym.make("CartPole-v1"), "masspole", 10.0)
    cartpole: Any = env.unwrapped
    assert np.isclose(cartpole.masspole, 1.0) and np.isclose(cartpole.total_mass, 2.0)
    shift_dynamics(env, "length", 3.0)
    assert np.isclose(cartpole.polemass_length, 1.0 * 1.5)
    with pytest.raises(ValueError, match="force_mag"):  # the message lists what can be shifted
        shift_dynamics(gym.make("CartPole-v1"), "pole_length", 2.0)
    with pytest.raises(ValueError, match="wind_power"):
        shift_dynamics(gym.make("LunarLander-v3"), "gravity", 0.5)


def test_mujoco_dynamics_shifts() -> None:
    env = gym.make("HalfCheetah-v5")
    model: Any = env.unwrapped.model
    torso, friction, gain = model.body_mass[1], model.geom_friction[:, 0].copy(), model.actuator_gainprm[:, 0].copy()
    total = model.body_mass.sum()
    shift_dynamics(env, "mass:torso", 2.0)
    assert np.isclose(model.body_mass[1], 2 * torso) and np.isclose(model.body_mass.sum(), total + torso)
    shift_dynamics(env, "friction", 0.5)
    shift_dynamics(env, "actuator_gain", 1.5)
    assert np.allclose(model.geom_friction[:, 0], friction / 2) and np.allclose(model.actuator_gainprm[:, 0], 1.5 * gain)
    with pytest.raises(ValueError, match="bodies are"):
        shift_dynamics(env, "mass:tail", 2.0)


def test_box2d_constants_are_make_keywords() -> None:
    make = _env_factory("LunarLander-v3", {})
    windy: Any = perturbed_env(make, get_perturbation("wind_power"), 10.0).unwrapped
    assert windy.enable_wind and windy.wind_power == 10.0
    calm: Any = perturbed_env(make, get_perturbation("wind_power"), 0.0).unwrapped
    assert not calm.enable_wind
    assert perturbed_env(make, get_perturbation("gravity"), -5.0).unwrapped.gravity == -5.0  # type: ignore[attr-defined]


# ------------------------------------------------------------------ adversarial observations
def _visited(agent: Any, env_id: str, n: int = 150) -> np.ndarray:
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    observations = []
    for _ in range(n):
        obs, _, terminated, truncated, _ = env.step(agent.predict(obs, deterministic=True)[0])
        observations.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
    return np.array(observations, dtype=np.float32)


def test_fgsm_and_pgd_change_the_discrete_agents_choice_more_than_random_noise(teacher: Any) -> None:
    observations = _visited(teacher, "CartPole-v1")
    radius = 0.02 * observation_scale(lambda: gym.make("CartPole-v1"))
    agent = differentiable_agent(teacher)
    rng = np.random.default_rng(0)
    clean = teacher.predict(observations)[0]
    random = observations + radius * rng.choice([-1.0, 1.0], size=observations.shape)  # corners of the same ball
    random_flips = np.mean(teacher.predict(random.astype(np.float32))[0] != clean)
    for method in ("fgsm", "pgd"):
        adversarial = attack(agent, observations, radius, method, 5, rng)
        assert np.all(np.abs(adversarial - observations) <= radius + 1e-6)
        flips = np.mean(teacher.predict(adversarial.astype(np.float32))[0] != clean)
        assert flips > 0.4 and flips > 2 * random_flips, (method, flips, random_flips)


def test_pgd_moves_a_continuous_teachers_action(zoo_dir: Path) -> None:
    sac = load_teacher(zoo_dir / "sac" / "Pendulum-v1_1", device="cpu")
    observations = _visited(sac, "Pendulum-v1", 60)
    radius = 0.05 * observation_scale(lambda: gym.make("Pendulum-v1"))
    rng = np.random.default_rng(0)
    clean = sac.predict(observations)[0]
    agent = differentiable_agent(sac)

    def moved(perturbed: np.ndarray) -> float:
        return float(np.abs(sac.predict(perturbed.astype(np.float32))[0] - clean).mean())

    random = observations + radius * rng.choice([-1.0, 1.0], size=observations.shape)  # corners of the same ball
    fgsm, pgd = (moved(attack(agent, observations, radius, method, 5, rng)) for method in ("fgsm", "pgd"))
    # Measured: random 0.68, FGSM 0.84, PGD 1.08 (the actions saturate at ±2, which bounds what any attack can do)
    assert pgd > 1.3 * moved(random) and pgd > fgsm > moved(random)


def test_attack_goes_through_the_models_vec_normalize() -> None:
    import torch as th

    venv = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), norm_reward=False)
    venv.obs_rms.mean, venv.obs_rms.var = np.array([0.5, 0.0, 0.0, 0.0]), np.array([4.0, 1.0, 0.01, 1.0])
    model = DQN("MlpPolicy", venv, learning_starts=0, seed=0, device="cpu")
    raw = np.array([[1.0, 0.2, 0.05, -0.1]], dtype=np.float32)
    q_values = differentiable_agent(model).scores(th.as_tensor(raw)).detach().numpy()
    with th.no_grad():
        expected = model.q_net(model.policy.obs_to_tensor(venv.normalize_obs(raw))[0]).numpy()
        raw_only = model.q_net(th.as_tensor(raw)).numpy()
    assert np.allclose(q_values, expected, atol=1e-5)
    assert not np.allclose(q_values, raw_only, atol=1e-3)  # the statistics do change the output


# ------------------------------------------------------------------ evaluate_robustness
def test_evaluate_robustness_rows_and_a_real_effect(teacher: Any) -> None:
    rows = evaluate_robustness(teacher, "CartPole-v1", "obs_noise", [0.0, 0.3], n_eval_episodes=1, scale=1.0)
    assert [row["level"] for row in rows] == [0.0, 0.3]
    assert {"level", "mean", "std", "returns"} <= set(rows[0])
    assert rows[0]["mean"] == 500.0 and rows[1]["mean"] < 100  # the collapse under absolute σ = 0.3
    frame = evaluate_robustness(teacher, "CartPole-v1", "obs_delay", [3], n_eval_episodes=2, as_frame=True)
    assert list(frame["level"]) == [3.0] and frame["mean"][0] < 50  # a delay of 3 steps: the teacher drops the pole


class AlwaysRight:
    """Anything with SB3's predict() can be evaluated (and this one ends CartPole's episodes fast)."""

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> Any:
        return np.ones(len(observation), dtype=np.int64), None


def test_evaluate_robustness_on_a_users_env_restores_its_dynamics() -> None:
    env = gym.make("CartPole-v1")
    rows = evaluate_robustness(AlwaysRight(), env, "dynamics:force_mag", [0.5, 2.0], n_eval_episodes=2)
    assert rows[0]["mean"] > rows[1]["mean"]  # pushed twice as hard, the pole falls sooner
    assert np.isclose(env.unwrapped.force_mag, 10.0)  # type: ignore[attr-defined]


def test_a_perturbation_of_your_own() -> None:
    from sb3_distill.robustness import Perturbation

    weaker = Perturbation("weaker_push", "factor on the push force", 0, 1, low_open=True,
                          wrap=lambda env, level, seed: shift_dynamics(env, "force_mag", level))  # fmt: skip
    rows = evaluate_robustness(AlwaysRight(), "CartPole-v1", weaker, [1.0, 0.25], n_eval_episodes=2)
    assert rows[1]["mean"] > rows[0]["mean"] and rows[0]["perturbation"] == "weaker_push"
    with pytest.raises(RobustnessError, match="wrap="):
        evaluate_robustness(AlwaysRight(), "CartPole-v1", Perturbation("nothing", "no effect"), [1.0])


BAD_INPUTS = [
    ("obs_nosie", [0.1], "Did you mean 'obs_noise'"),
    ("obs_noise", [-0.1], "out of range"),
    ("obs_noise", [float("nan")], "out of range"),
    ("sticky_actions", [1.5], r"\[0, 1\]"),
    ("obs_delay", [1.5], "whole number"),
    ("dynamics:length", [0.0], "out of range"),
    ("obs_noise", [], "empty"),
    ("obs_noise", "0.1", "list of numbers"),
    ("dynamics:pole_length", [2.0], "masspole"),
]


@pytest.mark.parametrize(("perturbation", "levels", "message"), BAD_INPUTS, ids=[f"{p}-{m}" for p, _, m in BAD_INPUTS])
def test_bad_input_is_refused_before_any_episode(
    teacher: Any, monkeypatch: pytest.MonkeyPatch, perturbation: str, levels: Any, message: str
) -> None:
    monkeypatch.setattr("sb3_distill.robustness.evaluation.evaluate_policy", _no_episode)
    with pytest.raises(RobustnessError, match=message):
        evaluate_robustness(teacher, "CartPole-v1", perturbation, levels)


def _no_episode(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("an episode ran before the input was checked")


def test_attacks_on_models_without_gradients_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, teacher: Any
) -> None:
    monkeypatch.setattr("sb3_distill.robustness.evaluation.evaluate_policy", _no_episode)
    with pytest.raises(RobustnessError, match="ARS is trained without gradients"):
        evaluate_robustness(ARS("LinearPolicy", "CartPole-v1", seed=0), "CartPole-v1", "pgd", [0.1])
    from sb3_distill.export import export

    exported = export(teacher.policy, tmp_path / "teacher.pt", format="torchscript")
    with pytest.raises(RobustnessError, match="has no gradients"):
        evaluate_robustness(str(exported), "CartPole-v1", "fgsm", [0.1])
    # ... while the exported file can be measured under perturbations that need no gradient
    monkeypatch.undo()
    assert evaluate_robustness(str(exported), "CartPole-v1", "obs_noise", [0.0], n_eval_episodes=1)[0]["mean"] == 500.0


def test_envs_that_cannot_take_the_perturbation(teacher: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sb3_distill.robustness.evaluation.evaluate_policy", _no_episode)
    with pytest.raises(RobustnessError, match="not a VecEnv"):
        evaluate_robustness(teacher, DummyVecEnv([lambda: gym.make("CartPole-v1")]), "obs_noise", [0.1])
    with pytest.raises(RobustnessError, match="give the env id"):
        evaluate_robustness(teacher, gym.make("LunarLander-v3"), "wind_power", [5.0])
    with pytest.raises(RobustnessError, match="Did you mean 'CartPole-v1'"):
        evaluate_robustness(teacher, "CartPole-v2", "obs_noise", [0.1])
    with pytest.raises(RobustnessError, match="out of range"):
        evaluate_robustness(teacher, "LunarLander-v3", "wind_power", [25.0])
    with pytest.raises(RobustnessError, match="does not fit"):
        evaluate_robustness(teacher, "CartPole-v1", "obs_noise", [0.1], scale=np.ones(3))


# ------------------------------------------------------------------ command line and plot
def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, plot = tmp_path / "rows.json", tmp_path / "plot.png"
    args = ["robustness", "dqn/CartPole-v1", "--perturbation", "obs_delay", "--levels", "2", "3", "--episodes", "2"]
    assert cli_main([*args, "--out", str(out), "--plot", str(plot)]) == 0
    assert "| obs_delay level | dqn/CartPole-v1 |" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert [row["level"] for row in written["results"]["dqn/CartPole-v1"]] == [2.0, 3.0]
    assert plot.stat().st_size > 1000
    assert cli_main([*args, "--out", str(out)]) == 2  # exists, no --force
    assert "--force" in capsys.readouterr().err
    for bad, message in (
        (["--perturbation", "fgsm", "--levels", "-1"], "out of range"),
        (["--perturbation", "noise", "--levels", "0.1"], "Unknown perturbation"),
        (["--perturbation", "obs_noise", "--levels", "0.1", "--scale", "wide"], "--scale"),
    ):
        assert cli_main(["robustness", "dqn/CartPole-v1", *bad]) == 2
        assert message in capsys.readouterr().err


def test_plot_robustness(tmp_path: Path) -> None:
    rows = [dict(perturbation="obs_noise", level=level, mean=500 - 1000 * level, std=10.0) for level in (0.0, 0.1, 0.3)]
    figure = plot_robustness({"teacher": rows, "student": rows}, tmp_path / "p.png", reference=(20.0, 500.0))
    assert (tmp_path / "p.png").stat().st_size > 1000 and figure.axes[0].get_ylabel() == "normalized score"
    with pytest.raises(FileExistsError, match="force=True"):
        plot_robustness(rows, tmp_path / "p.png")
