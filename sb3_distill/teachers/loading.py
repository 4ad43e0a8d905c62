"""
``load_teacher``: resolve a teacher spec (model, zip, rl-zoo3 run folder, zoo id, Hub repo) to a :class:`Teacher`.

Old files are expected: zips and ``vecnormalize.pkl`` pickled with ``gym``, unsafe-YAML ``config.yml``,
renamed env ids, env versions that can no longer be made (MuJoCo ``-v3``), state-dict keys renamed since.
Only the policy is rebuilt (from the zip's ``policy_class``, spaces and ``policy_kwargs``), so files without
optimizer state, or with schedules pickled by an old Python, load as well.
"""

import copy
import inspect
import json
import os
import pickle
import re
import socket
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import gymnasium as gym
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.utils import ConstantSchedule, get_device
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, unwrap_vec_normalize

from sb3_distill.errors import (
    HubAccessError,
    IncompatibleTeacherError,
    TeacherLoadError,
    TeacherNotFoundError,
)
from sb3_distill.teachers.envs import recorded_env_ids, resolve_env_id
from sb3_distill.teachers.legacy import canonical_env_id, legacy_gym_modules
from sb3_distill.teachers.safe_files import (
    TRUST_ENV_VAR,
    check_inside,
    check_policy_size,
    check_zip_members,
    load_vec_normalize_safely,
    load_yaml,
    read_model_data,
)
from sb3_distill.teachers.safe_files import trust_remote_code as trust_remote_code  # re-exported
from sb3_distill.teachers.spaces import same_space as same_space  # re-exported: callers import it from here
from sb3_distill.teachers.spaces import space_mismatches
from sb3_distill.teachers.teacher import Teacher

trust_remote_code_allowed = trust_remote_code  # the name load_teacher's keyword does not shadow

TeacherSpec = str | os.PathLike | Teacher | BaseAlgorithm | BasePolicy

#: Where the package's own teachers live (an rl-zoo3 log folder).
BUNDLED_DIR = Path(__file__).parent / "bundled"
#: ``"dqn/CartPole-v1@weak"``: the bundled weak teacher (0.2-0.5 of the strong one's normalized score)
WEAK_SUFFIX = "@weak"
ZOO_ENV_VAR = "SB3_DISTILL_ZOO"
HUB_ORGANIZATION = "sb3"
_ZOO_ID = re.compile(r"^(?P<algo>[a-z0-9_]+)/(?P<env>[^/\\]+)$")
_RUN_FOLDER = re.compile(r"^(?P<env>.+)_(?P<run>\d+)$")
# The model's entries that the teacher needs; everything else in "data" is left unpickled.
_NEEDED_DATA = ("policy_class", "observation_space", "action_space", "policy_kwargs", "use_sde")


# ---------------------------------------------------------------------------------------------- model files
def _check_sb3_zip(path: Path) -> list[str]:
    if not path.is_file():
        raise TeacherNotFoundError(
            f"Teacher file {path} does not exist: check the path (or give a zoo id like 'dqn/CartPole-v1')."
        )
    if not zipfile.is_zipfile(path):
        raise TeacherLoadError(
            f"{path} is not a zip file (or it is truncated): a teacher must be a model saved by SB3's "
            "model.save() (a .zip). Re-download or re-save it."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            # Member names and declared sizes only: nothing is extracted, and the members read are checked against
            # their CRC as they are read (a damaged optimizer state the teacher does not need no longer matters).
            names = check_zip_members(path, archive)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise TeacherLoadError(f"{path} is a damaged zip ({error}): re-download or re-save the teacher.") from error
    if "data" not in names or "policy.pth" not in names:
        raise TeacherLoadError(
            f"{path} is a zip but not an SB3 model (no 'data' and 'policy.pth' entries; it has {names[:6]}): "
            "save the teacher with model.save() from stable-baselines3 or sb3-contrib."
        )
    return names


def _guess_algo(policy: BasePolicy, data: dict[str, Any]) -> str:
    """rl-zoo3's name for the algorithm that trained ``policy`` (the zip does not record it)."""
    module = type(policy).__module__
    for name in ("qrdqn", "dqn", "sac", "tqc", "crossq", "ars"):
        if f".{name}." in module:
            return name
    if ".td3." in module:
        return "ddpg" if data.get("target_noise_clip") == 0.0 and data.get("policy_delay") == 1 else "td3"
    if "clip_range" in data:
        return "ppo"
    if "cg_max_steps" in data:
        return "trpo"
    if "n_steps" in data:
        return "a2c"
    return type(policy).__name__


def _read_data_trusted(path: Path, device: th.device) -> tuple[dict[str, Any], dict[str, th.Tensor]]:
    """SB3's own reader (cloudpickle, ``legacy_gym_modules``): only with ``trust_remote_code``."""
    with zipfile.ZipFile(path) as archive:
        raw = json.loads(archive.read("data").decode())
    # Keep old pickled schedules and buffers unread: only what rebuilds the policy is unpickled.
    skip = {key: None for key, value in raw.items() if isinstance(value, dict) and ":serialized:" in value}
    skip = {key: value for key, value in skip.items() if key not in _NEEDED_DATA}
    try:
        with legacy_gym_modules():
            data, params, _ = load_from_zip_file(path, custom_objects=skip, device=device)
    except Exception as error:
        raise TeacherLoadError(f"Could not read the SB3 model {path}: {type(error).__name__}: {error}") from error
    assert data is not None
    missing = [key for key in ("policy_class", "observation_space", "action_space") if key not in data]
    if missing:
        raise TeacherLoadError(
            f"{path}: could not deserialize {missing} (saved with an incompatible library version?). Load it "
            "yourself with ALGO.load(path, custom_objects=...) and pass the model as the teacher."
        )
    return data, params["policy"]  # type: ignore[return-value]


def load_policy_file(
    path: str | os.PathLike, device: th.device | str = "auto", trust_remote_code: bool | None = None
) -> tuple[BasePolicy, dict[str, Any]]:
    """
    Rebuild the policy stored in an SB3 zip, ignoring optimizer state and training-only entries.

    By default nothing is unpickled (:mod:`sb3_distill.teachers.safe_files`): the policy class must be one of SB3,
    sb3-contrib or sb3-distill, the spaces and ``policy_kwargs`` hold only allowed classes, the weights only tensors.

    :param path: the ``.zip``
    :param device: torch device
    :param trust_remote_code: read the file as SB3 does (cloudpickle: it can run code); default
        ``$SB3_DISTILL_TRUST_REMOTE_CODE``
    :return: the policy (weights loaded) and the zip's ``data`` (the entries it needs decoded)
    """
    path = Path(path)
    _check_sb3_zip(path)
    device = get_device(device)
    trusted = trust_remote_code_allowed(trust_remote_code)
    if trusted:
        data, weights = _read_data_trusted(path, device)
    else:
        data, weights = read_model_data(path, device)
    policy_class = data["policy_class"]
    if isinstance(policy_class, str):
        raise TeacherLoadError(f"{path}: policy_class is the alias {policy_class!r}; pass the loaded model instead.")
    kwargs = dict(data.get("policy_kwargs") or {})
    signature = inspect.signature(policy_class.__init__).parameters
    if not any(param.kind is inspect.Parameter.VAR_KEYWORD for param in signature.values()):
        # Old files carry keys that policies no longer take (SB3 1.x SAC stored ``device``).
        kwargs = {key: value for key, value in kwargs.items() if key in signature}
    if "use_sde" in signature and "use_sde" not in kwargs and "use_sde" in data:
        kwargs["use_sde"] = data["use_sde"]
    if "lr_schedule" in signature:
        kwargs["lr_schedule"] = ConstantSchedule(0.0)
    if not trusted:
        check_policy_size(policy_class, (data["observation_space"], data["action_space"]), kwargs, weights, str(path))
    try:
        policy = policy_class(data["observation_space"], data["action_space"], **kwargs).to(device)
        policy.load_state_dict(upgrade_state_dict(policy, weights))
    except Exception as error:
        raise TeacherLoadError(
            f"{path}: the weights do not fit {policy_class.__name__} as this version of SB3 builds it ({error}). "
            "Load the model yourself (ALGO.load) and pass it as the teacher."
        ) from error
    return policy, data


def upgrade_state_dict(policy: BasePolicy, state_dict: dict[str, th.Tensor]) -> dict[str, th.Tensor]:
    """
    A policy's saved weights under today's key names, for files saved by older SB3 / sb3-contrib versions.

    The renames are those the libraries' own ``load()`` handles: sb3-contrib < 1.7 saved ARS's linear policy as
    ``action_net.weight`` / ``.bias`` (today ``action_net.0.*``; ``ARS.set_parameters`` renames them), and SB3 < 1.7
    saved actor-critic policies without the ``pi_features_extractor`` / ``vf_features_extractor`` aliases of a shared
    ``features_extractor`` (``BaseAlgorithm.load`` then loads with ``exact_match=False``; here the aliases are filled
    from the shared extractor, so that every other key is still checked).

    :param policy: the freshly built policy
    :param state_dict: the weights read from the file
    :return: the weights, keys renamed where needed (the input is not changed)
    """
    expected = policy.state_dict().keys()
    upgraded = dict(state_dict)
    for key in [key for key in upgraded if key not in expected]:
        if key.startswith("action_net.") and key.replace("action_net.", "action_net.0.", 1) in expected:
            upgraded[key.replace("action_net.", "action_net.0.", 1)] = upgraded.pop(key)
    for key in expected:
        for alias in ("pi_features_extractor.", "vf_features_extractor."):
            shared = "features_extractor." + key[len(alias) :]
            if key.startswith(alias) and key not in upgraded and shared in upgraded:
                upgraded[key] = upgraded[shared]
    return upgraded


def load_vec_normalize(path: str | os.PathLike, trust_remote_code: bool | None = None) -> VecNormalize:
    """
    Read ``VecNormalize`` statistics (``vecnormalize.pkl``, old ``gym`` pickles too) without tying them to an env.

    SB3's ``VecNormalize.load`` needs the env to wrap; a teacher or an exported file only needs the statistics.
    By default through a restricted unpickler (numpy arrays and scalars, spaces, ``VecNormalize`` and
    ``RunningMeanStd`` state: nothing else is imported or called).

    :param path: the pickle
    :param trust_remote_code: unpickle it fully (it can run code); default ``$SB3_DISTILL_TRUST_REMOTE_CODE``
    :return: the statistics
    """
    path = Path(path)
    if not path.is_file():
        raise TeacherNotFoundError(f"VecNormalize statistics {path} do not exist: check the path.")
    if not trust_remote_code_allowed(trust_remote_code):
        normalizer = load_vec_normalize_safely(path)
    else:
        try:
            with legacy_gym_modules(), open(path, "rb") as file:
                normalizer = pickle.load(file)
        except Exception as error:
            raise TeacherLoadError(f"Could not read the VecNormalize statistics {path}: {error}") from error
    if not isinstance(normalizer, VecNormalize):
        raise TeacherLoadError(f"{path} holds a {type(normalizer).__name__}, not VecNormalize statistics.")
    return normalizer


@dataclass
class _Found:
    """A located teacher: the zip and the files beside it (found, not yet read)."""

    zip_path: Path
    algo: str | None = None
    env_id: str | None = None
    vecnormalize: Path | None = None
    config_file: Path | None = None
    #: rl-zoo3's args.yml (env_kwargs is one of its entries) or the Hub's env_kwargs.yml (the mapping itself)
    args_file: Path | None = None
    env_kwargs_file: Path | None = None
    source: str = ""
    #: the folder the zip was found in: its side files must not link out of it
    root: Path | None = None
    #: whether the zip itself was found in ``root`` (a run folder, the Hugging Face cache) rather than named
    zip_in_root: bool = False


def _side_file(path: Path) -> Path | None:
    return path if path.is_file() else None


def _from_zip(zip_path: Path, algo: str | None = None, source: str = "", root: Path | None = None) -> _Found:
    """Find the env id and stats next to a zip, in rl-zoo3's run layout or the Hub's."""
    run_dir = zip_path.parent
    if root is None:
        # the Hugging Face cache links a snapshot's files to the repo's blobs/ folder
        root = run_dir.parent.parent if run_dir.parent.name == "snapshots" else run_dir
    found = _Found(zip_path=zip_path, algo=algo, source=source or str(zip_path), root=root)
    match = _RUN_FOLDER.match(run_dir.name)
    env_name = match.group("env") if match else zip_path.stem
    config_dir = run_dir / env_name
    if config_dir.is_dir():
        found.config_file = _side_file(config_dir / "config.yml")
        # rl-zoo3 records the env's constructor arguments with the command line, not with the hyperparameters.
        found.args_file = _side_file(config_dir / "args.yml")
        found.env_id = env_name
        found.vecnormalize = _side_file(config_dir / "vecnormalize.pkl")
        if found.algo is None and match:
            found.algo = run_dir.parent.name
    # Hugging Face layout: {algo}-{env}.zip, config.yml and vec_normalize.pkl side by side.
    if found.vecnormalize is None:
        found.vecnormalize = _side_file(run_dir / "vec_normalize.pkl")
    if found.config_file is None and (run_dir / "config.yml").is_file():
        found.config_file = run_dir / "config.yml"
        found.env_kwargs_file = _side_file(run_dir / "env_kwargs.yml")
    return found


@dataclass
class _Read:
    """What a located teacher's files hold."""

    policy: BasePolicy
    data: dict[str, Any]
    normalizer: VecNormalize | None
    config: dict[str, Any]
    env_kwargs: dict[str, Any]


def _read_found(found: _Found, device: th.device | str, trust: bool | None) -> _Read:
    """Read a located teacher's files: safely unless ``trust`` (see :mod:`sb3_distill.teachers.safe_files`)."""
    trusted = trust_remote_code_allowed(trust)
    root = None if trusted else found.root

    def inside(path: Path) -> Path:
        return check_inside(path, root)

    config = load_yaml(inside(found.config_file), trusted) if found.config_file is not None else {}
    env_kwargs: dict[str, Any] = {}
    if found.args_file is not None:
        env_kwargs = dict(load_yaml(inside(found.args_file), trusted).get("env_kwargs") or {})
    elif found.env_kwargs_file is not None:
        env_kwargs = load_yaml(inside(found.env_kwargs_file), trusted)
    normalizer = load_vec_normalize(inside(found.vecnormalize), trusted) if found.vecnormalize is not None else None
    policy, data = load_policy_file(inside(found.zip_path) if found.zip_in_root else found.zip_path, device, trusted)
    return _Read(policy, data, normalizer, config, env_kwargs)


def _from_run_folder(run_dir: Path, algo: str | None = None) -> _Found:
    match = _RUN_FOLDER.match(run_dir.name)
    env_name = match.group("env") if match else run_dir.name
    candidates = [run_dir / f"{env_name}.zip", run_dir / "best_model.zip"]
    zips = [path for path in candidates if path.is_file()] or sorted(run_dir.glob("*.zip"))
    if not zips:
        raise TeacherNotFoundError(
            f"No model zip in the folder {run_dir} (looked for {env_name}.zip, best_model.zip, *.zip): "
            "give the run folder rl-zoo3 wrote (logs/ALGO/ENV_N) or the .zip itself."
        )
    found = _from_zip(zips[0], algo=algo or (run_dir.parent.name if match else None), source=str(run_dir), root=run_dir)
    found.zip_in_root = True
    return found


# ---------------------------------------------------------------------------------------------- zoo ids
def zoo_roots(zoo_dirs: Sequence[str | os.PathLike] | str | os.PathLike | None = None) -> list[Path]:
    """
    The folders a zoo id is looked up in, in order (the Hub and the bundled teachers come after these).

    :param zoo_dirs: folders given by the caller (searched first)
    :return: ``zoo_dirs``, then ``$SB3_DISTILL_ZOO`` (a path list), ``./logs``, ``./rl-trained-agents``
    """
    if zoo_dirs is None:
        given: list[str | os.PathLike] = []
    elif isinstance(zoo_dirs, (str, os.PathLike)):
        given = [zoo_dirs]
    else:
        given = list(zoo_dirs)
    from_env = [part for part in os.environ.get(ZOO_ENV_VAR, "").split(os.pathsep) if part]
    return [Path(path) for path in [*given, *from_env, "logs", "rl-trained-agents"]]


def _find_in_zoo_root(root: Path, algo: str, env_id: str) -> _Found | None:
    """Latest run ``root/algo/ENV_N`` holding a model, trying the env's older ids too."""
    for env_name in recorded_env_ids(env_id):
        runs = []
        for run_dir in (root / algo).glob(f"{env_name}_*"):
            match = _RUN_FOLDER.match(run_dir.name)
            if match and match.group("env") == env_name and (run_dir / f"{env_name}.zip").is_file():
                runs.append((int(match.group("run")), run_dir))
        if runs:
            return _from_run_folder(max(runs)[1], algo=algo)
    return None


def hub_filenames(repo_id: str) -> tuple[str, list[str]]:
    """
    :param repo_id: e.g. ``sb3/dqn-CartPole-v1``
    :return: the model file name (``dqn-CartPole-v1.zip``) and the optional files beside it
    """
    return f"{repo_id.split('/')[-1]}.zip", ["config.yml", "vec_normalize.pkl"]


def _hub_repo_for(algo: str, env_id: str) -> str:
    return f"{HUB_ORGANIZATION}/{algo}-{env_id}"


def _from_hf_cache(repo_id: str) -> _Found | None:
    from huggingface_hub import try_to_load_from_cache

    model_file, _ = hub_filenames(repo_id)
    cached = try_to_load_from_cache(repo_id, model_file)
    if not isinstance(cached, str):
        return None
    found = _from_zip(Path(cached), source=f"hub:{repo_id} (local cache)", root=_hf_repo_folder(Path(cached)))
    found.zip_in_root = True
    return found


def _hf_repo_folder(snapshot_file: Path) -> Path:
    """``.../models--org--name/snapshots/REV/file`` → ``.../models--org--name`` (its files link into ``blobs/``)."""
    return snapshot_file.parent.parent.parent


def _check_hub_reachable(timeout: float = 3.0) -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise HubAccessError("HF_HUB_OFFLINE is set: the Hugging Face Hub cannot be used. Unset it, or use a local file.")
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise HubAccessError(
            f"The Hugging Face Hub ({constants.ENDPOINT}) is not reachable ({error}). Work offline with a local "
            "zip, an rl-zoo3 folder (zoo_dirs=... or $SB3_DISTILL_ZOO), or a bundled teacher."
        ) from error


def _from_hub(repo_id: str, trust: bool | None) -> _Found:
    """Download (into the huggingface_hub cache) a model repo in the ``sb3/`` layout."""
    if not trust_remote_code_allowed(trust):
        raise HubAccessError(
            f"Loading {repo_id} from the Hugging Face Hub means unpickling a downloaded file, which can run "
            f"arbitrary code. If you trust the repo, pass trust_remote_code=True, set {TRUST_ENV_VAR}=1 or give "
            "sb3-distill --trust-remote-code."
        )
    cached = _from_hf_cache(repo_id)
    if cached is not None:
        return cached
    _check_hub_reachable()
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    model_file, extras = hub_filenames(repo_id)
    try:
        local = Path(hf_hub_download(repo_id, model_file))
    except (HfHubHTTPError, OSError) as error:
        raise HubAccessError(f"Could not download {model_file} from {repo_id}: {error}") from error
    for extra in extras:
        try:
            hf_hub_download(repo_id, extra)
        except (EntryNotFoundError, HfHubHTTPError):
            pass  # optional files
    return _from_zip(local, source=f"hub:{repo_id}", root=_hf_repo_folder(local))


def _resolve_zoo_id(
    algo: str, env_id: str, zoo_dirs: Sequence[str | os.PathLike] | str | os.PathLike | None, trust: bool | None
) -> _Found:
    looked: list[str] = []
    for root in zoo_roots(zoo_dirs):
        found = _find_in_zoo_root(root, algo, env_id)
        if found is not None:
            return found
        looked.append(f"{root / algo}/{{{','.join(recorded_env_ids(env_id))}}}_N/")
    repos = [_hub_repo_for(algo, name) for name in recorded_env_ids(env_id)]
    for repo in repos:
        found = _from_hf_cache(repo)
        if found is not None:
            return found
    looked.append(f"Hugging Face cache: {', '.join(repos)}")
    if trust_remote_code_allowed(trust):
        for repo in repos:
            try:
                return _from_hub(repo, trust)
            except HubAccessError as error:
                looked.append(f"Hub {repo}: {error}")
                if "not reachable" in str(error) or "HF_HUB_OFFLINE" in str(error):
                    break
    else:
        looked.append(
            f"Hub {', '.join(repos)}: skipped (remote pickles not allowed; trust_remote_code=True, {TRUST_ENV_VAR}=1 "
            "or --trust-remote-code)"
        )
    found = _find_in_zoo_root(BUNDLED_DIR, algo, env_id)
    if found is not None:
        found.source = f"{algo}/{env_id} (bundled)"
        return found
    bundled = sorted(f"{path.parent.parent.name}/{path.stem}" for path in BUNDLED_DIR.glob("*/*_*/*.zip"))
    looked.append(f"bundled teachers: {', '.join(bundled) or 'none'}")
    raise TeacherNotFoundError(f"No teacher '{algo}/{env_id}' found. Looked in:\n  - " + "\n  - ".join(looked))


# ---------------------------------------------------------------------------------------------- checks
def check_teacher_spaces(teacher: Teacher, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """
    Raise :class:`IncompatibleTeacherError` unless the teacher acts on the same spaces as the env.

    Bounds are not compared (old zoo files record slightly different ones); types, shapes and sizes are.

    :param teacher: the teacher
    :param observation_space: the env's (student's) observation space
    :param action_space: the env's action space
    """
    problems = space_mismatches(teacher.observation_space, teacher.action_space, observation_space, action_space)
    if problems:
        trained_on = f" It was trained on {teacher.env_id}." if teacher.env_id else ""
        raise IncompatibleTeacherError(
            f"The teacher {teacher!r} does not fit this env: {'; '.join(problems)}.{trained_on} Give the student the "
            "env the teacher was trained on, with its wrappers: use teacher.make_env(); or pick a teacher of this env."
        )


def _env_spaces(env: gym.Env | VecEnv | str) -> tuple[spaces.Space, spaces.Space]:
    if isinstance(env, str):
        probe = gym.make(env)
        result = (probe.observation_space, probe.action_space)
        probe.close()
        return result
    return env.observation_space, env.action_space


# ---------------------------------------------------------------------------------------------- entry point
def copy_policy(policy: BasePolicy) -> BasePolicy:
    """
    A detached copy of a policy, rebuilt from its constructor parameters and weights as ``BasePolicy.load()`` does.

    A teacher is frozen; wrapping the caller's own policy would freeze a model that may keep learning.

    :param policy: an SB3 policy
    :return: an independent copy with the same weights
    """
    try:
        copied = type(policy)(**policy._get_constructor_parameters())
        copied.load_state_dict(policy.state_dict())
    except (TypeError, RuntimeError, KeyError):
        # A few policies do not take their own constructor parameters back (sb3-contrib's ARSLinearPolicy). A deepcopy
        # works for those; it is not the first choice because it fails on a policy that just trained (its last
        # action distribution keeps tensors of the autograd graph).
        return copy.deepcopy(policy)
    # ActorCriticPolicy reports squash_output=None among its constructor parameters when it has no dist kwargs.
    copied._squash_output = policy.squash_output
    return copied


def _teacher_from_model(model: BaseAlgorithm, device: th.device | str) -> Teacher:
    """A frozen snapshot of a model (policy and VecNormalize statistics); the model itself may keep learning."""
    normalizer, env_id = None, None
    env = model.get_env()
    if env is not None:
        vec_normalize = unwrap_vec_normalize(env)
        if vec_normalize is not None:
            # Pickling drops the wrapped env: only the statistics are kept, and they no longer move with it.
            normalizer = pickle.loads(pickle.dumps(vec_normalize))
        spec = env.get_attr("spec")[0]
        env_id = spec.id if spec is not None else None
    algo = next((name for name, cls in _zoo_algos().items() if type(model) is cls), type(model).__name__.lower())
    return Teacher(
        copy_policy(model.policy),
        algo=algo,
        env_id=env_id,
        obs_normalizer=normalizer,
        source=f"{type(model).__name__} instance (snapshot at step {model.num_timesteps})",
        device=device,
    )


def _zoo_algos() -> dict[str, type[BaseAlgorithm]]:
    from rl_zoo3.utils import ALGOS

    return ALGOS


def load_teacher(
    spec: TeacherSpec,
    env: gym.Env | VecEnv | str | None = None,
    device: th.device | str = "auto",
    algo: str | None = None,
    zoo_dirs: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
    trust_remote_code: bool | None = None,
) -> Teacher:
    """
    Load a teacher from any of these specs:

    1. a loaded SB3 / sb3-contrib model, an SB3 policy, or a :class:`Teacher` (returned as is);
    2. a path to an SB3 ``.zip`` (the algorithm is read from the file; ``algo=`` may force the name);
    3. an rl-zoo3 run folder, e.g. ``logs/dqn/CartPole-v1_1`` (its ``vecnormalize.pkl`` is applied);
    4. a zoo id ``"ALGO/ENV"``, looked up in ``zoo_dirs``, ``$SB3_DISTILL_ZOO``, ``./logs``,
       ``./rl-trained-agents``, the local Hugging Face cache, the Hub repo ``sb3/ALGO-ENV`` (only if remote
       pickles are allowed), then the teachers bundled with this package;
    5. ``"hub:ORG/REPO"`` to force the Hugging Face Hub (needs ``trust_remote_code``);
    6. ``"ALGO/ENV@weak"`` (e.g. ``"dqn/CartPole-v1@weak"``): the weak teacher bundled with this package, an early
       checkpoint of the bundled teacher's run at 0.2-0.5 of its normalized score (its return is in
       ``bundled/teachers.json``), to measure whether a student outgrows its teacher.

    The env id recorded with a file is mapped to today's: known renames (``LunarLander-v2`` → ``-v3``), and for
    versions that can no longer be made, the newest version with the teacher's spaces (``HalfCheetah-v3`` →
    ``-v5``); where none has them (``Ant-v3``), the error says so. ``teacher.make_env()`` builds that env with the
    teacher's rl-zoo3 wrappers.

    Every source is read without unpickling (:mod:`sb3_distill.teachers.safe_files`): the policy class must be one of
    SB3, sb3-contrib or sb3-distill, the spaces, ``policy_kwargs`` and ``vecnormalize.pkl`` hold only allowed
    classes, the weights only tensors, the YAML files only plain values.

    :param spec: the teacher spec
    :param env: if given (env, VecEnv or env id), the teacher must act on its observation and action spaces
    :param device: torch device of the teacher
    :param algo: force the algorithm name of a zip
    :param zoo_dirs: extra rl-zoo3 log folders to search first for a zoo id
    :param trust_remote_code: read the files as SB3 does, unpickling them (a file from someone you do not trust can
        run any code that way), and allow downloads from the Hub; by default (``$SB3_DISTILL_TRUST_REMOTE_CODE``, else
        ``False``) nothing is unpickled and a file that needs more fails with
        :class:`~sb3_distill.teachers.safe_files.UntrustedFileError` naming what it needs
    :return: the frozen :class:`Teacher`
    """
    if isinstance(spec, Teacher):
        teacher = spec.to(get_device(device)) if device != "auto" else spec
    elif isinstance(spec, BaseAlgorithm):
        teacher = _teacher_from_model(spec, device)
    elif isinstance(spec, BasePolicy):
        teacher = Teacher(copy_policy(spec), algo=algo or "unknown", source=f"{type(spec).__name__} instance", device=device)
    elif isinstance(spec, (str, os.PathLike)):
        teacher = _load_spec_string(str(spec), device, algo, zoo_dirs, trust_remote_code)
    else:
        raise TypeError(
            f"A teacher spec is a model, a policy, a Teacher, a path, a zoo id 'algo/env' or 'hub:org/repo', "
            f"not {type(spec).__name__}."
        )
    if env is not None:
        check_teacher_spaces(teacher, *_env_spaces(env))
    return teacher


def _bundled_weak(algo: str, env_id: str) -> _Found:
    """The bundled weak teacher ``algo/env_id@weak`` (only bundled: the suffix names this package's own files)."""
    found = _find_in_zoo_root(BUNDLED_DIR / "weak", algo, env_id)
    if found is None:
        weak = sorted(f"{path.parent.parent.name}/{path.stem}{WEAK_SUFFIX}" for path in BUNDLED_DIR.glob("weak/*/*_*/*.zip"))
        raise TeacherNotFoundError(f"No bundled weak teacher '{algo}/{env_id}{WEAK_SUFFIX}'; bundled: {', '.join(weak)}.")
    found.source = f"{algo}/{env_id}{WEAK_SUFFIX}"
    return found


def _load_spec_string(
    spec: str,
    device: th.device | str,
    algo: str | None,
    zoo_dirs: Sequence[str | os.PathLike] | str | os.PathLike | None,
    trust: bool | None,
) -> Teacher:
    path = Path(spec).expanduser()
    if spec.startswith("hub:"):
        found = _from_hub(spec[len("hub:") :], trust)
    elif path.is_dir():
        found = _from_run_folder(path, algo)
    elif path.is_file() or spec.endswith(".zip"):
        found = _from_zip(path, algo)
    elif spec.endswith(WEAK_SUFFIX) and (match := _ZOO_ID.match(spec.removesuffix(WEAK_SUFFIX))) is not None:
        found = _bundled_weak(match.group("algo"), canonical_env_id(match.group("env")))
    elif (match := _ZOO_ID.match(spec)) is not None:
        found = _resolve_zoo_id(match.group("algo"), canonical_env_id(match.group("env")), zoo_dirs, trust)
    else:
        raise TeacherNotFoundError(
            f"'{spec}' is neither an existing file or folder, nor a zoo id 'algo/env' (e.g. 'dqn/CartPole-v1'), "
            "nor 'hub:org/repo'."
        )
    read = _read_found(found, device, trust)
    policy = read.policy
    env_id = found.env_id or read.config.get("env_id")
    if env_id is None and "-" in found.zip_path.stem and found.zip_path.stem.split("-", 1)[0] in _zoo_algos():
        env_id = found.zip_path.stem.split("-", 1)[1]  # Hub naming: algo-Env-vN.zip
    if env_id is not None:
        env_id = resolve_env_id(env_id, policy.observation_space, policy.action_space, read.config, read.env_kwargs)
    return Teacher(
        policy,
        algo=algo or found.algo or _guess_algo(policy, read.data),
        env_id=env_id,
        obs_normalizer=read.normalizer,
        source=found.source,
        source_path=found.zip_path,
        device=device,
        config=read.config,
        env_kwargs=read.env_kwargs,
    )
