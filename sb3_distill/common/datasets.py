"""
Teacher datasets for offline distillation: transitions played by a teacher, held in an SB3 replay buffer.

On-disk format (``.npz``, read without unpickling anything): a zip with one ``.npy`` file per array of the
``ReplayBuffer`` (``DictReplayBuffer`` for dict observations), written with ``numpy.lib.format`` and read with
``allow_pickle=False``, and ``dataset.json``: the format and its version, ``buffer_size``, ``n_envs``, ``pos``,
``full`` and the two spaces (``Box`` bounds as JSON lists, exact for every float). The arrays have shape
``(buffer_size, n_envs, ...)``: ``observations`` and ``next_observations`` (``observations/KEY`` for dict
observations) are the *raw* observations (never VecNormalize-normalized, so any student or teacher can normalize them
its own way), ``actions`` the actions taken (for ``Box`` spaces scaled to [-1, 1], as SB3 stores them), ``rewards``
the raw rewards, ``dones``, ``timeouts``. ``.npz`` is added to a path without suffix. ``numpy.load(path)`` reads the
arrays, any language with a zip and an ``.npy`` reader too.

Datasets written before this format were a pickled ``ReplayBuffer`` (what ``save_replay_buffer()`` writes): they load
only with ``trust_remote_code=True`` (or ``SB3_DISTILL_TRUST_REMOTE_CODE=1``), since unpickling can run code;
:func:`save_teacher_dataset` re-saves one in this format.
"""

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.save_util import load_from_pkl
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, unwrap_vec_normalize

from sb3_distill.common.files import atomic_path, resolve_save_path
from sb3_distill.common.obs import obs_rows
from sb3_distill.teachers import check_teacher_spaces, load_teacher
from sb3_distill.teachers.loading import TeacherSpec
from sb3_distill.teachers.safe_files import opt_in_hint, trust_remote_code
from sb3_distill.teachers.spaces import scale_actions, space_mismatches


class DatasetError(ValueError):
    """A teacher dataset that cannot be used: truncated, not a dataset, or recorded on other spaces."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A teacher dataset path that does not exist."""


class UntrustedDatasetError(DatasetError):
    """A pickled (old-format) dataset, loaded only with ``trust_remote_code``."""


#: ``dataset.json``'s ``format`` and the version this code writes (and reads).
DATASET_FORMAT, DATASET_VERSION = "sb3-distill teacher dataset", 1
_META = "dataset.json"
_ARRAYS = ("actions", "rewards", "dones", "timeouts")
_OBSERVATIONS = ("observations", "next_observations")


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
    :param path: if given, where to save the dataset (``.npz``, see the module docstring for the format)
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
            f"Cannot save the dataset to {path}: it is a folder. Give a file name, e.g. {Path(path) / 'teacher_data.npz'}."
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
        save_teacher_dataset(buffer, path)
    return buffer


# ---------------------------------------------------------------------------------------------- the file format
def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """
    :param space: a ``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary``, or a ``Dict`` / ``Tuple`` of them
    :return: its JSON description (exact: floats are written with all their digits)
    """
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "dtype": str(space.dtype),
            "shape": list(space.shape),
            "low": space.low.tolist(),
            "high": space.high.tolist(),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "start": space.start.tolist(), "dtype": str(space.dtype)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: space_to_json(value) for key, value in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(value) for value in space.spaces]}
    raise DatasetError(
        f"A dataset cannot record the space {space}: Box, Discrete, MultiDiscrete, MultiBinary, Dict and Tuple can."
    )


def space_from_json(description: Any) -> spaces.Space:
    """
    :param description: what :func:`space_to_json` wrote
    :return: the space
    """
    kind = description.get("type") if isinstance(description, dict) else None
    if kind == "Box":
        dtype = np.dtype(description["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError(f"Box dtype {dtype}")
        low, high = (np.asarray(description[key], dtype=dtype) for key in ("low", "high"))
        return spaces.Box(low=low, high=high, shape=tuple(int(n) for n in description["shape"]), dtype=dtype)  # type: ignore[arg-type]
    if kind == "Discrete":
        return spaces.Discrete(int(description["n"]), start=int(description.get("start", 0)))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(description["nvec"], dtype=np.dtype(description["dtype"]), start=description.get("start"))  # type: ignore[arg-type]
    if kind == "MultiBinary":
        return spaces.MultiBinary(description["n"])
    if kind == "Dict":
        return spaces.Dict({str(key): space_from_json(value) for key, value in description["spaces"].items()})
    if kind == "Tuple":
        return spaces.Tuple([space_from_json(value) for value in description["spaces"]])
    raise ValueError(f"unknown space {kind!r}")


def _named_arrays(buffer: ReplayBuffer) -> dict[str, np.ndarray]:
    arrays = {name: getattr(buffer, name) for name in _ARRAYS}
    for name in _OBSERVATIONS:
        value = getattr(buffer, name)
        if isinstance(value, dict):
            arrays.update({f"{name}/{key}": array for key, array in value.items()})
        else:
            arrays[name] = value
    return arrays


def save_teacher_dataset(buffer: ReplayBuffer, path: str | os.PathLike) -> Path:
    """
    Save a dataset (a ``ReplayBuffer`` of raw transitions) in the ``.npz`` format of this module, atomically.

    :param buffer: the dataset (``optimize_memory_usage`` buffers are not supported)
    :param path: the file (``.npz`` is added to a path without suffix)
    :return: the path written
    """
    if getattr(buffer, "optimize_memory_usage", False):
        raise DatasetError(
            "A dataset cannot be saved from a buffer with optimize_memory_usage=True: record it with "
            "collect_teacher_dataset()."
        )
    meta = {
        "format": DATASET_FORMAT,
        "version": DATASET_VERSION,
        "buffer_size": int(buffer.buffer_size),
        "n_envs": int(buffer.n_envs),
        "pos": int(buffer.pos),
        "full": bool(buffer.full),
        "handle_timeout_termination": bool(buffer.handle_timeout_termination),
        "observation_space": space_to_json(buffer.observation_space),
        "action_space": space_to_json(buffer.action_space),
    }
    target = resolve_save_path(path, "npz")
    # Atomic: a crash or a full disk during the write leaves a previous dataset at this path intact.
    with (
        atomic_path(target) as temporary,
        open(temporary, "wb") as file,
        zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        archive.writestr(_META, json.dumps(meta, indent=1))
        for name, array in _named_arrays(buffer).items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return target


def _read_npz_dataset(file: Path, device: str) -> ReplayBuffer:
    def bad(why: str) -> DatasetError:
        return DatasetError(
            f"Could not read the dataset {file} ({why}): it is truncated or not a dataset written by "
            "collect_teacher_dataset. Record it again."
        )

    try:
        with zipfile.ZipFile(file) as archive:
            names = set(archive.namelist())
            if _META not in names:
                raise bad(f"no {_META}")
            meta = json.loads(archive.read(_META))
            if not isinstance(meta, dict) or meta.get("format") != DATASET_FORMAT:
                raise bad(f"{_META} is not a teacher dataset's")
            if meta.get("version") != DATASET_VERSION:
                raise DatasetError(
                    f"{file} is a teacher dataset of format version {meta.get('version')}; this version of sb3-distill "
                    f"reads version {DATASET_VERSION}: upgrade sb3-distill, or record the dataset again."
                )
            observation_space = space_from_json(meta["observation_space"])
            action_space = space_from_json(meta["action_space"])
            n_envs, buffer_size = int(meta["n_envs"]), int(meta["buffer_size"])
            # A buffer of one transition, then the file's arrays in place of its own (checked one by one).
            buffer = make_buffer(n_envs, observation_space, action_space, n_envs=n_envs, device=device)
            expected = _named_arrays(buffer)
            for name, template in expected.items():
                if f"{name}.npy" not in names:
                    raise bad(f"no {name}.npy")
                with archive.open(f"{name}.npy") as member:
                    array = np.lib.format.read_array(member, allow_pickle=False)
                shape = (buffer_size, *template.shape[1:])
                if array.dtype != template.dtype or array.shape != shape:
                    raise bad(f"{name} has shape {array.shape} and dtype {array.dtype}, expected {shape} and {template.dtype}")
                head, _, key = name.partition("/")
                if key:
                    getattr(buffer, head)[key] = array
                else:
                    setattr(buffer, name, array)
    except DatasetError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, TypeError, RecursionError) as error:
        raise bad(f"{type(error).__name__}: {error}") from error
    buffer.buffer_size = buffer_size
    buffer.pos, buffer.full = int(meta["pos"]), bool(meta["full"])
    buffer.handle_timeout_termination = bool(meta.get("handle_timeout_termination", True))
    if not 0 <= buffer.pos < max(buffer_size, 1) + 1:
        raise bad(f"pos {buffer.pos} out of the buffer's {buffer_size} rows")
    return buffer


def _read_pickled_dataset(file: Path, trust: bool | None) -> Any:
    if not trust_remote_code(trust):
        raise UntrustedDatasetError(
            f"{file} is a pickled dataset (the format of sb3-distill before the .npz datasets, or an SB3 "
            f"save_replay_buffer file): loading it unpickles it, which can run any code. {opt_in_hint()} Then "
            "save_teacher_dataset(dataset, path) re-saves it as .npz, which loads without trust."
        )
    try:
        return load_from_pkl(file)
    except (EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, IndexError) as error:
        raise DatasetError(
            f"Could not read the dataset {file} ({type(error).__name__}: {error}): it is truncated or not a "
            "dataset written by collect_teacher_dataset / save_replay_buffer. Record it again."
        ) from error


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
    trust_remote_code: bool | None = None,
    device: str = "auto",
) -> ReplayBuffer:
    """
    Load a dataset written by :func:`collect_teacher_dataset`, with checks. Nothing is unpickled, unless the file is
    an old pickled dataset (or an SB3 ``save_replay_buffer`` file) and ``trust_remote_code`` allows it.

    :param path: the file (``.npz``, then ``.pkl``, are tried too when the path has no suffix)
    :param observation_space: if given, the dataset must have been recorded on it
    :param action_space: if given, the dataset must have been recorded on it
    :param trust_remote_code: allow unpickling an old pickled dataset (default: ``$SB3_DISTILL_TRUST_REMOTE_CODE``)
    :param device: torch device of the batches sampled from it
    :return: the dataset (a ``ReplayBuffer``)
    """
    file = Path(path)
    if not file.is_file() and not file.suffix:
        file = next(
            (candidate for candidate in (file.with_suffix(".npz"), file.with_suffix(".pkl")) if candidate.is_file()), file
        )
    if not file.is_file():
        raise DatasetNotFoundError(
            f"Dataset file {file} does not exist: check the path, or record one first with "
            "collect_teacher_dataset(teacher, env, n_steps, path)."
        )
    with open(file, "rb") as stream:
        head = stream.read(4)
    if head.startswith(b"PK"):
        dataset: Any = _read_npz_dataset(file, device)
    elif head.startswith(b"\x80"):  # a pickle of protocol 2 or more
        dataset = _read_pickled_dataset(file, trust_remote_code)
    else:
        raise DatasetError(
            f"Could not read the dataset {file}: it is neither a teacher dataset (.npz) nor a pickled one; it is "
            "truncated or not a dataset written by collect_teacher_dataset. Record it again."
        )
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
    "UntrustedDatasetError",
    "check_dataset_spaces",
    "collect_teacher_dataset",
    "load_teacher_dataset",
    "make_buffer",
    "save_teacher_dataset",
    "scale_box_actions",
    "space_from_json",
    "space_to_json",
]
