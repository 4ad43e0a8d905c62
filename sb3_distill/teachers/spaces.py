"""Spaces: whether two agents act on the same ones, the one message that says how they differ, and action scaling."""

from typing import TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

ArrayT = TypeVar("ArrayT", np.ndarray, th.Tensor)


def same_space(a: spaces.Space, b: spaces.Space) -> bool:
    """
    :param a: a space
    :param b: another space
    :return: whether they have the same type, shape and size (bounds are not compared)
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Discrete):
        return int(a.n) == int(b.n)  # type: ignore[attr-defined]
    if isinstance(a, spaces.Dict):
        assert isinstance(b, spaces.Dict)
        return a.spaces.keys() == b.spaces.keys() and all(same_space(a[key], b[key]) for key in a.spaces)
    if isinstance(a, spaces.MultiDiscrete):
        return list(a.nvec) == list(b.nvec)  # type: ignore[attr-defined]
    return a.shape == b.shape


def space_mismatches(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    expected_observation_space: spaces.Space,
    expected_action_space: spaces.Space,
    expected: str = "the env's",
) -> list[str]:
    """
    How a pair of spaces differs from the expected pair, one phrase per differing space (empty when they fit).

    Bounds are not compared (old zoo files record slightly different ones); types, shapes and sizes are.

    :param observation_space: the observation space to check (a teacher's, a dataset's)
    :param action_space: the action space to check
    :param expected_observation_space: the observation space it must have (usually the env's)
    :param expected_action_space: the action space it must have
    :param expected: whose spaces the expected ones are, for the message
    :return: e.g. ``["observation space Box(shape=(18,)) vs the env's Box(shape=(17,))"]``
    """
    problems = []
    if not same_space(observation_space, expected_observation_space):
        problems.append(
            f"observation space {describe(observation_space)} vs {expected} {describe(expected_observation_space)}"
        )
    if not same_space(action_space, expected_action_space):
        problems.append(f"action space {describe(action_space)} vs {expected} {describe(expected_action_space)}")
    return problems


def describe(space: spaces.Space) -> str:
    """
    :param space: a space
    :return: what :func:`same_space` compares, e.g. ``Box(shape=(18,))`` (bounds left out: they can be long and are
        not compared)
    """
    if isinstance(space, spaces.Box):
        return f"Box(shape={space.shape})"
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{key}: {describe(value)}" for key, value in space.spaces.items()) + ")"
    return str(space)


def _bounds(action_space: spaces.Box, like: ArrayT) -> tuple[ArrayT, ArrayT]:
    if isinstance(like, th.Tensor):
        low = th.as_tensor(action_space.low, dtype=like.dtype, device=like.device)
        high = th.as_tensor(action_space.high, dtype=like.dtype, device=like.device)
        return low, high  # type: ignore[return-value]
    return action_space.low, action_space.high  # type: ignore[return-value]


def scale_actions(action_space: spaces.Space, actions: ArrayT, clip: bool = False) -> ArrayT:
    """
    Env-space actions to [-1, 1]: SB3's ``BasePolicy.scale_action``, for numpy arrays and torch tensors alike.

    SB3's own method takes numpy arrays and a policy; losses need it on tensors, datasets on a bare space.

    :param action_space: the env's action space (other than ``Box``: actions are returned unchanged)
    :param actions: a batch of actions in the env's bounds
    :param clip: clip to the bounds first (what SB3's replay buffers store is always in [-1, 1])
    :return: the scaled actions
    """
    if not isinstance(action_space, spaces.Box):
        return actions
    low, high = _bounds(action_space, actions)
    if clip:
        actions = th.clamp(actions, low, high) if isinstance(actions, th.Tensor) else np.clip(actions, low, high)  # type: ignore[assignment]
    return 2.0 * ((actions - low) / (high - low)) - 1.0  # type: ignore[return-value]


def unscale_actions(action_space: spaces.Space, actions: ArrayT) -> ArrayT:
    """
    Actions in [-1, 1] back to the env's bounds: SB3's ``BasePolicy.unscale_action``, for arrays and tensors.

    :param action_space: the env's action space (other than ``Box``: actions are returned unchanged)
    :param actions: a batch of actions in [-1, 1]
    :return: the actions in the env's bounds
    """
    if not isinstance(action_space, spaces.Box):
        return actions
    low, high = _bounds(action_space, actions)
    return low + 0.5 * (actions + 1.0) * (high - low)  # type: ignore[return-value]


def env_actions(policy: BasePolicy, actions: th.Tensor) -> th.Tensor:
    """
    A policy's deterministic output to the actions the env receives, as ``BasePolicy.predict()`` does it.

    Squashing policies (SAC, TD3, TQC, tanh-squashed actor-critics) act in [-1, 1] and are unscaled to the bounds;
    the others are clipped to them. Discrete actions are returned unchanged.

    :param policy: the policy that produced ``actions``
    :param actions: its output (``policy._predict(obs, deterministic=True)``)
    :return: actions in the env's action space
    """
    space = policy.action_space
    if not isinstance(space, spaces.Box):
        return actions
    if policy.squash_output:
        return unscale_actions(space, actions)
    low, high = _bounds(space, actions)
    return th.max(th.min(actions, high), low)
