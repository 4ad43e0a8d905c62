"""Observations that an env really produces, shared by the export tests (ONNX / TorchScript and C)."""

import gymnasium as gym
import numpy as np


def visited_observations(env_id: str, n: int, seed: int = 0) -> np.ndarray:
    """
    :param env_id: gymnasium id
    :param n: how many observations
    :param seed: seed of the env and of the random actions
    :return: ``n`` observations of random play, where the agent's decisions matter
    """
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations = []
    while len(observations) < n:
        observations.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    return np.asarray(observations, dtype=np.float32)
