"""
Teacher datasets for offline distillation: transitions played by a teacher, stored as an SB3 replay buffer.

On-disk format: the file is exactly what ``OffPolicyAlgorithm.save_replay_buffer()`` writes, a pickled
``stable_baselines3.common.buffers.ReplayBuffer`` (``DictReplayBuffer`` for dict observations), written with
``stable_baselines3.common.save_util.save_to_pkl`` (``.pkl`` is added to a path without suffix). Its arrays have
shape ``(buffer_size, n_envs, ...)``: ``observations`` and ``next_observations`` are the *raw* observations (never
VecNormalize-normalized, so any student or teacher can normalize them its own way), ``actions`` the actions taken
(for ``Box`` spaces scaled to [-1, 1], as SB3 stores them), ``rewards`` the raw rewards, ``dones``, ``timeouts``;
``pos`` / ``full`` say how much is filled and ``observation_space`` / ``action_space`` what it was recorded on.
Any SB3 off-policy model can read it with ``model.load_replay_buffer(path)``. Like every SB3 pickle, only load
datasets you trust.
"""

import os
import pickle
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, unwrap_vec_normalize

from sb3_distill.common.files import atomic_path, resolve_save_path
from sb3_distill.common.obs import obs_rows
from sb3_distill.teachers import check_teacher_spaces, load_teacher
from sb3_distill.teachers.loading import TeacherSpec
from sb3_distill.teachers.spaces import scale_actions, space_mismatches


class DatasetError(ValueError):
    """A teacher dataset that cannot be used: truncated, not a dataset, or recorded on other spaces."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A teacher dataset path that does not exist."""


def scale_box_actions(action_space: spaces.Space, actions: np.ndarray) -> np.ndarray:
    """
    Actions as SB3's replay buffers store them: for ``Box`` spaces clipped to the bounds, then scaled to [-1, 1].

    :param action_space: the action space
    :param actions: a batch of actions in the env's space
    :return: the actions to store
    """
    return scale_actions(action_space, actions, clip=True)


class TransitionRecorder:
    """
    Adds the transitions of a ``VecEnv`` to a replay buffer with *raw* observations and rewards, whether or not the
    env is wrapped in ``VecNormalize`` (as SB3's off-policy algorithms store them).

    A buffer made for one env (``n_envs=1``) also accepts the transitions of several envs, one env at a time.

    :param buffer: the replay buffer to fill
    :param env: the env that produces the transitions
    """

    def __init__(self, buffer: ReplayBuffer, env: VecEnv) -> None:
        if buffer.n_envs not in (1, env.num_envs):
            raise DatasetError(
                f"The replay buffer holds transitions of {buffer.n_envs} envs, the env has {env.num_envs}: "
                "use a buffer with n_envs=1 or n_envs=env.num_envs."
            )
        self.buffer = buffer
        self.env = env
        self.vec_normalize = unwrap_vec_normalize(env)
        self.last_obs: np.ndarray | dict[str, np.ndarray] | None = None

    def start(self, obs: np.ndarray | dict[str, np.ndarray]) -> None:
        """
        :param obs: the observation the env returned at its last reset (normalized if the env normalizes)
        """
        self.last_obs = self.vec_normalize.get_original_obs() if self.vec_normalize is not None else obs

    def add(
        self,
        actions: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """
        Store one step of every env.

        :param actions: the actions sent to the env (env space, unscaled)
        :param new_obs: what ``env.step()`` returned (after auto-reset for finished envs)
        :param rewards: what ``env.step()`` returned
        :param dones: what ``env.step()`` returned
        :param infos: what ``env.step()`` returned (terminal observations are taken from them)
        """
        assert self.last_obs is not None, "call start() with the reset observation first"
        if self.vec_normalize is not None:
            new_obs = self.vec_normalize.get_original_obs()
            rewards = self.vec_normalize.get_original_reward()
        next_obs = {key: value.copy() for key, value in new_obs.items()} if isinstance(new_obs, dict) else new_obs.copy()
        for index, done in enumerate(dones):
            terminal = infos[index].get("terminal_observation") if done else None
            if terminal is None:
                continue
            if self.vec_normalize is not None:  # VecNormalize normalizes the terminal observation too
                terminal = self.vec_normalize.unnormalize_obs(terminal)
            if isinstance(next_obs, dict):
                for key in next_obs:
                    next_obs[key][index] = terminal[key]
            else:
                next_obs[index] = terminal
        buffer_actions = scale_box_actions(self.buffer.action_space, np.asarray(actions))
        if self.buffer.n_envs == self.env.num_envs:
            self.buffer.add(self.last_obs, next_obs, buffer_actions, rewards, dones, infos)  # type: ignore[arg-type]
        else:
            for index in range(self.env.num_envs):
                row = slice(index, index + 1)
                obs, next_row = obs_rows(self.last_obs, row), obs_rows(next_obs, row)
                self.buffer.add(obs, next_row, buffer_actions[row], rewards[row], dones[row], [infos[index]])  # type: ignore[arg-type]
        self.last_obs = new_obs


def make_buffer(
    n_transitions: int, observation_space: spaces.Space, action_space: spaces.Space, n_envs: int = 1, device: str = "auto"
) -> ReplayBuffer:
    """
    :param n_transitions: total capacity (over all envs)
    :param observation_space: observation space
    :param action_space: action space
    :param n_envs: number of envs whose steps are added together
    :param device: torch device of the sampled batches
    :return: an empty ``ReplayBuffer`` (``DictReplayBuffer`` for dict observations) that keeps timeouts apart
    """
    buffer_class = DictReplayBuffer if isinstance(observation_space, spaces.Dict) else ReplayBuffer
    return buffer_class(n_transitions, observation_space, action_space, device=device, n_envs=n_envs)  # type: ignore[arg-type]


def collect_teacher_dataset(
    teacher: TeacherSpec,
    env: gym.Env | VecEnv | str,
    n_steps: int,
    path: str | os.PathLike | None = None,
    deterministic: bool = False,
    random_action_prob: float = 0.0,
    seed: int | None = None,
) -> ReplayBuffer:
    """
    Let a teacher play ``n_steps`` env steps and record them, once, for offline distillation.

    :param teacher: a :class:`~sb3_distill.teachers.Teacher` or any spec ``load_teacher`` takes
    :param env: the env (a ``VecEnv``, a gymnasium env, or an env id) the teacher plays in; it must have the
        teacher's spaces. With a ``VecEnv`` of several envs, ``n_steps`` counts the steps of all of them.
    :param n_steps: number of transitions to record
    :param path: if given, where to save the dataset (see the module docstring for the format)
    :param deterministic: whether the teacher plays its greedy actions (default: it samples its own policy;
        DQN-family teachers are greedy either way)
    :param random_action_prob: share of uniformly random actions mixed in, for a wider coverage of states
    :param seed: seed of the env and of the random actions
    :return: the filled replay buffer (the dataset)
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1 (got {n_steps}).")
    if not 0.0 <= random_action_prob <= 1.0:
        raise ValueError(f"random_action_prob must be in [0, 1] (got {random_action_prob}).")
    if path is not None and Path(path).is_dir():
        raise IsADirectoryError(
            f"Cannot save the dataset to {path}: it is a folder. Give a file name, e.g. {Path(path) / 'teacher_data.pkl'}."
        )
    if isinstance(env, str):
        vec_env: VecEnv = make_vec_env(env, n_envs=1, seed=seed)
    elif isinstance(env, VecEnv):
        vec_env = env
    else:
        vec_env = DummyVecEnv([lambda: env])  # type: ignore[list-item,return-value]
    loaded = load_teacher(teacher)
    check_teacher_spaces(loaded, vec_env.observation_space, vec_env.action_space)

    rng = np.random.default_rng(seed)
    if seed is not None:
        vec_env.seed(seed)
        vec_env.action_space.seed(seed)
    buffer = make_buffer(n_steps, vec_env.observation_space, vec_env.action_space, n_envs=vec_env.num_envs)
    recorder = TransitionRecorder(buffer, vec_env)
    recorder.start(vec_env.reset())  # type: ignore[arg-type]
    for _ in range(-(-n_steps // vec_env.num_envs)):
        actions, _ = loaded.predict(recorder.last_obs, deterministic=deterministic)  # type: ignore[arg-type]
        explore = rng.random(vec_env.num_envs) < random_action_prob
        if explore.any():
            random_actions = np.array([vec_env.action_space.sample() for _ in range(vec_env.num_envs)])
            actions = np.where(explore.reshape(-1, *([1] * (actions.ndim - 1))), random_actions, actions)
        new_obs, rewards, dones, infos = vec_env.step(actions)
        recorder.add(actions, new_obs, rewards, dones, infos)  # type: ignore[arg-type]
    if path is not None:
        # Atomic: a crash or a full disk during the write leaves a previous dataset at this path intact.
        with atomic_path(resolve_save_path(path, "pkl")) as temporary:
            save_to_pkl(temporary, buffer)
    return buffer


def check_dataset_spaces(
    dataset: ReplayBuffer, observation_space: spaces.Space, action_space: spaces.Space, what: str = "the env"
) -> None:
    """
    Raise :class:`DatasetError` unless the dataset was recorded on these spaces.

    :param dataset: the dataset
    :param observation_space: the expected observation space
    :param action_space: the expected action space
    :param what: whose spaces these are, for the message (``"the env"``, ``"the teacher ..."``)
    """
    problems = space_mismatches(dataset.observation_space, dataset.action_space, observation_space, action_space, f"{what}'s")
    if problems:
        raise DatasetError(
            f"The dataset was recorded on other spaces than {what}'s: {'; '.join(problems)}. "
            "Collect a dataset on this env with collect_teacher_dataset(teacher, env, n_steps, path)."
        )


def load_teacher_dataset(
    path: str | os.PathLike,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
) -> ReplayBuffer:
    """
    Load a dataset written by :func:`collect_teacher_dataset` (or any SB3 ``save_replay_buffer``), with checks.

    :param path: the file (``.pkl`` is tried too when the path has no suffix)
    :param observation_space: if given, the dataset must have been recorded on it
    :param action_space: if given, the dataset must have been recorded on it
    :return: the dataset
    """
    file = Path(path)
    if not file.is_file() and not file.suffix and file.with_suffix(".pkl").is_file():
        file = file.with_suffix(".pkl")
    if not file.is_file():
        raise DatasetNotFoundError(
            f"Dataset file {file} does not exist: check the path, or record one first with "
            "collect_teacher_dataset(teacher, env, n_steps, path)."
        )
    try:
        dataset = load_from_pkl(file)
    except (EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, IndexError) as error:
        raise DatasetError(
            f"Could not read the dataset {file} ({type(error).__name__}: {error}): it is truncated or not a "
            "dataset written by collect_teacher_dataset / save_replay_buffer. Record it again."
        ) from error
    if not isinstance(dataset, ReplayBuffer):
        raise DatasetError(
            f"{file} holds a {type(dataset).__name__}, not an SB3 ReplayBuffer: record a dataset with "
            "collect_teacher_dataset()."
        )
    if dataset.size() == 0:
        raise DatasetError(f"The dataset {file} is empty: record it again with n_steps >= 1.")
    if observation_space is not None and action_space is not None:
        check_dataset_spaces(dataset, observation_space, action_space, "the env")
    return dataset


__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "TransitionRecorder",
    "check_dataset_spaces",
    "collect_teacher_dataset",
    "load_teacher_dataset",
    "make_buffer",
    "scale_box_actions",
]
