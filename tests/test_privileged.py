"""
Privileged teachers (issue 21): the teacher acts on the full state, the student on what it is given through
``StudentObservation``. CartPole without velocities: the student stacks frames of (x, θ), the bundled full-state DQN
teacher labels every state it visits from ``info["teacher_observation"]``.
"""

import gymnasium as gym
from gymnasium.wrappers import FrameStackObservation
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from sb3_distill import DistillDQN, load_teacher
from sb3_distill.robustness import StudentObservation, hide_velocities

ENV_ID = "CartPole-v1"
STEPS = 3_000


def blind_cartpole(seed: int) -> VecEnv:
    """CartPole whose student sees the last 2 frames of (cart position, pole angle); the teacher the full state."""

    def wrap(env: gym.Env) -> gym.Env:
        return FrameStackObservation(StudentObservation(env, hide_velocities(ENV_ID)), stack_size=2)

    return make_vec_env(ENV_ID, seed=seed, wrapper_class=wrap)


def test_privileged_student_without_velocities_beats_dqn_from_scratch() -> None:
    teacher = load_teacher(f"dqn/{ENV_ID}")
    student = DistillDQN("MlpPolicy", blind_cartpole(0), teacher=teacher, policy_kwargs=dict(net_arch=[64, 64]), seed=0)
    assert student.observation_space.shape == (2, 2)  # the teacher's 4 columns never reach the student
    student.learn(STEPS)
    # Control: the same network on the same observations, by DQN alone (its defaults), for the same env steps.
    control = DQN("MlpPolicy", blind_cartpole(0), policy_kwargs=dict(net_arch=[64, 64]), seed=0)
    control.learn(STEPS)
    student_return, _ = evaluate_policy(student, blind_cartpole(100), n_eval_episodes=5)
    control_return, _ = evaluate_policy(control, blind_cartpole(100), n_eval_episodes=5)
    print(f"privileged student {student_return:.1f}, DQN from scratch {control_return:.1f}")
    assert student_return >= 200, student_return
    assert student_return >= control_return + 100, (student_return, control_return)
