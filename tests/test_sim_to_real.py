"""
Sim-to-real (issue 21): a student that trains in a shifted env ("real") from a teacher of the nominal one ("sim").

The ``"auto"`` choices (DistillDQN's ``recipe``, DistillPPO's ``distill_coef``) and QDagger's rule judge the teacher by
its return where the student trains: in a copy of the student's own env when that env behaves differently from its
registered id (:mod:`sb3_distill.common.reference_env`), on the registered env otherwise.
"""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

from sb3_distill import DistillDQN, DistillPPO, load_teacher
from sb3_distill.common.distill_coef import AUTO_COEF_CHOICES
from sb3_distill.common.reference_env import shifted_student_env
from sb3_distill.robustness import ActionNoise, GaussianNoise, StudentObservation, shift_dynamics

ENV_ID = "CartPole-v1"
CARTPOLE_SPACE = gym.make(ENV_ID).observation_space


def weak_push(env: gym.Env) -> gym.Env:
    """CartPole whose push force is a quarter of the nominal one: the bundled teacher plays 19.7, random 32.7."""
    return shift_dynamics(env, "force_mag", 0.25)


def cartpole(seed: int = 0, wrapper_class=None, n_envs: int = 1) -> VecEnv:
    return make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, wrapper_class=wrapper_class)


@pytest.fixture(scope="module")
def teacher():
    return load_teacher(f"dqn/{ENV_ID}")


def test_a_shifted_student_env_is_told_from_the_registered_one() -> None:
    assert shifted_student_env(cartpole(), CARTPOLE_SPACE) is None
    # A change made in place (no wrapper, same id and keywords): found by playing a copy of the student's env
    shifted = shifted_student_env(cartpole(wrapper_class=weak_push), CARTPOLE_SPACE)
    assert shifted is not None and shifted.unwrapped.force_mag == pytest.approx(2.5)
    # A wrapper that changes what the teacher's actions do
    assert shifted_student_env(cartpole(wrapper_class=lambda env: ActionNoise(env, 0.3, seed=0)), CARTPOLE_SPACE)
    # Noise in the student's view only: the teacher sees the clean state of the registered env
    noisy_view = cartpole(wrapper_class=lambda env: StudentObservation(env, GaussianNoise(0.3, seed=0)))
    assert shifted_student_env(noisy_view, CARTPOLE_SPACE) is None
    # Box2D: make keywords (LunarLander's wind); the env is rebuilt from its spec, not copied
    lander_space = gym.make("LunarLander-v3").observation_space
    assert shifted_student_env(make_vec_env("LunarLander-v3", seed=0), lander_space) is None
    windy = make_vec_env("LunarLander-v3", seed=0, env_kwargs=dict(enable_wind=True, wind_power=15.0))
    assert shifted_student_env(windy, lander_space).unwrapped.enable_wind


def test_the_student_env_is_not_touched_by_the_probe() -> None:
    env = cartpole(wrapper_class=weak_push)
    env.reset()
    env.step(np.array([1]))
    inner = env.envs[0]  # type: ignore[attr-defined]
    before = (inner.unwrapped.state.copy(), inner.unwrapped.np_random.bit_generator.state, inner.get_total_steps())
    shifted_student_env(env, CARTPOLE_SPACE)
    after = (inner.unwrapped.state, inner.unwrapped.np_random.bit_generator.state, inner.get_total_steps())
    assert np.array_equal(before[0], after[0]) and before[1:] == after[1:]


def test_auto_choices_judge_the_teacher_where_the_student_trains(teacher) -> None:
    # DistillDQN: the teacher solves CartPole-v1 as registered (a copy) but not the student's env (outgrow it)
    nominal = DistillDQN("MlpPolicy", cartpole(), teacher=teacher, learning_starts=50, seed=0)
    nominal.learn(60)
    assert nominal.recipe == "policy_distillation" and nominal.reference_measurement.where == "registered"
    shifted = DistillDQN("MlpPolicy", cartpole(wrapper_class=weak_push), teacher=teacher, learning_starts=50, seed=0)
    shifted.learn(60)
    assert shifted.recipe == "outgrow", shifted.recipe_choice
    assert "measured in the student's own env" in shifted.recipe_choice
    random_return, teacher_return = shifted.teacher_reference_returns()
    assert teacher_return < 30 < random_return  # the nominal teacher is worse than random there
    assert shifted.reference_measurement.env_steps == pytest.approx(10 * (teacher_return + random_return))
    # A teacher no better than random gets QDagger's smallest weight once the student has played (not the full one)
    assert shifted.current_distill_coef() == 0.0
    # DistillPPO: the small λ_0 of a weak teacher, and QDagger's rule then gives it nothing
    ppo = DistillPPO(
        "MlpPolicy", cartpole(wrapper_class=weak_push, n_envs=2), teacher=teacher, n_steps=64, batch_size=64, seed=0
    )
    ppo.learn(128)
    assert ppo.distill_coef_choice.startswith(f"distill_coef='auto' chose QDagger's rule with λ_0 = {AUTO_COEF_CHOICES[1]:g}")
    assert "measured in the student's own env" in ppo.distill_coef_choice
    assert ppo.current_distill_coef() == 0.0


def test_set_env_to_the_real_env_judges_the_teacher_there(teacher) -> None:
    # Distilled in "sim" (the registered env, where the teacher solves it): "auto" copies the teacher
    student = DistillDQN("MlpPolicy", cartpole(), teacher=teacher, learning_starts=50, seed=0)
    student.learn(60)
    assert student.recipe == "policy_distillation" and student.reference_measurement.where == "registered"
    sim_returns = student.teacher_reference_returns()
    # The same env again changes nothing
    student.set_env(student.get_env())
    assert student.recipe == "policy_distillation" and student.teacher_reference_returns() == sim_returns
    # "Real": the teacher is measured again there, and "auto" chooses again (it is worse than random: outgrow it)
    student.set_env(cartpole(wrapper_class=weak_push))
    assert student.recipe == "auto" and student.recipe_choice is None
    student.learn(60)
    assert student.recipe == "outgrow" and student.td_target == "student", student.recipe_choice
    assert student.reference_measurement.where == "student_env"
    assert student.teacher_reference_returns()[1] < 30 < sim_returns[1]
    assert student.current_distill_coef() == 0.0
    # An explicit recipe is the user's: kept, but the reference returns are still the new env's
    explicit = DistillDQN("MlpPolicy", cartpole(), teacher=teacher, recipe="outgrow", learning_starts=50, seed=0)
    explicit.learn(60)
    explicit.set_env(cartpole(wrapper_class=weak_push))
    explicit.learn(60)
    assert explicit.recipe == "outgrow" and explicit.reference_measurement.where == "student_env"
    # DistillPPO: its distill_coef="auto" follows the new env's measurement (λ_0 of a weak teacher)
    ppo = DistillPPO("MlpPolicy", cartpole(n_envs=2), teacher=teacher, n_steps=64, batch_size=64, seed=0)
    ppo.learn(128)
    assert ppo.distill_coef_choice.startswith(f"distill_coef='auto' chose QDagger's rule with λ_0 = {AUTO_COEF_CHOICES[0]:g}")
    ppo.set_env(cartpole(wrapper_class=weak_push, n_envs=2))
    ppo.learn(128)
    assert ppo.distill_coef_choice.startswith(f"distill_coef='auto' chose QDagger's rule with λ_0 = {AUTO_COEF_CHOICES[1]:g}")
    assert ppo.reference_measurement.where == "student_env"


def test_a_student_distilled_in_sim_starts_the_real_learner() -> None:
    # The benchmark's sim-first method at its smallest budget: sim steps reported apart from the real ones
    from scripts.benchmark.suites._real_world import sim_to_real_job

    run = sim_to_real_job("cartpole_weak_push", "sim_student", 0, 1, budget_scale=0.0)
    assert run["sim_steps"] == 500 and run["curve"][-1]["step"] == 500
    assert run["reference_where"] == "student_env" and run["reference_env_steps"] > 0
    assert {"sim_return", "zero_shot"} <= set(run) and "'outgrow'" in run["choice"]
