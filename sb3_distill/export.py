"""
Export a trained agent (typically a distilled student) for deployment: ONNX or TorchScript.

The exported file maps a batch of *raw* observations (float32, shape ``(batch, *obs_shape)``) to the greedy action
and, beside it, the scores it was chosen from: Q-values (DQN, DistillDQN; QR-DQN: mean over quantiles), action logits
(PPO, A2C, PolicyDistill students), or the policy's raw action output (continuous actions). The agent's own
observation preprocessing is inside: SB3's ``preprocess_obs`` and, if given (or found beside the model in an
rl-zoo3 run folder), its ``VecNormalize`` observation statistics — clip((obs − mean) / sqrt(var + ε), ±clip_obs).

::

    sb3-distill export student.zip --format onnx                       # -> student.onnx
    sb3-distill export logs/distill_dqn/LunarLander-v3_1 --format torchscript --out lander.pt
    sb3-distill export student.zip --format onnx --vecnormalize vecnormalize.pkl

Python: :func:`export` (a file or an in-memory model), :func:`load_exported` (a callable on numpy observations).
ONNX needs the optional extra ``onnx`` (``pip install "sb3-distill[onnx]"``): ``onnx`` and ``onnxruntime``.
"""

import argparse
import importlib
import io
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecNormalize

from sb3_distill.errors import TeacherError
from sb3_distill.teachers import copy_policy, load_teacher, load_vec_normalize, policy_kind

from sb3_distill.common.files import atomic_path

FORMATS: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}
#: ONNX opset of the exported graphs (supported by every onnxruntime of the last years)
ONNX_OPSET = 17
INPUT_NAME = "observation"


class ExportError(ValueError):
    """An agent or option that cannot be exported; the message says what to do."""


def require_onnx() -> tuple[Any, Any]:
    """
    :return: the ``onnx`` and ``onnxruntime`` modules
    :raises ExportError: naming the extra to install when either is missing
    """
    modules = []
    for name in ("onnx", "onnxruntime"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError as error:
            raise ExportError(
                f"ONNX export needs the optional extra 'onnx' ({name} is not installed): "
                'pip install "sb3-distill[onnx]"  (or use --format torchscript, which needs nothing more).'
            ) from error
    return modules[0], modules[1]


class ExportedPolicy(th.nn.Module):
    """
    Raw observation → (greedy action, scores), with the agent's observation normalization inside.

    :param policy: an SB3 / sb3-contrib / sb3-distill policy (copied, on CPU, in eval mode)
    :param obs_normalizer: the agent's ``VecNormalize`` (only its observation statistics are used), if any
    """

    obs_mean: th.Tensor
    obs_std: th.Tensor

    def __init__(self, policy: BasePolicy, obs_normalizer: VecNormalize | None = None) -> None:
        super().__init__()
        if isinstance(policy.observation_space, spaces.Dict) or not isinstance(policy.observation_space, spaces.Box):
            raise ExportError(
                f"Only Box observation spaces can be exported (one float tensor in); this agent observes "
                f"{policy.observation_space}."
            )
        self.policy = copy_policy(policy).to("cpu")
        self.policy.set_training_mode(False)
        self.policy.requires_grad_(False)
        try:
            # What the acting network outputs and how the action follows from it, per kind of policy.
            self.kind = policy_kind(self.policy)
        except TeacherError as error:
            raise ExportError(f"Cannot export this agent: {error}") from error
        self.normalize = obs_normalizer is not None and bool(obs_normalizer.norm_obs)
        shape = policy.observation_space.shape
        mean, var, epsilon, clip = np.zeros(shape), np.ones(shape), 0.0, np.inf
        if self.normalize:
            assert obs_normalizer is not None
            statistics: Any = obs_normalizer.obs_rms  # a RunningMeanStd for Box observations
            mean, var = statistics.mean, statistics.var
            epsilon, clip = obs_normalizer.epsilon, obs_normalizer.clip_obs
        self.register_buffer("obs_mean", th.as_tensor(mean, dtype=th.float32))
        self.register_buffer("obs_std", th.sqrt(th.as_tensor(var, dtype=th.float32) + epsilon))
        self.clip_obs = float(clip)

    def forward(self, observation: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        obs = observation.float()
        if self.normalize:
            obs = th.clamp((obs - self.obs_mean) / self.obs_std, -self.clip_obs, self.clip_obs)
        scores = self.kind.action_scores(obs)
        return self.kind.actions_from_scores(scores), scores

    @property
    def output_names(self) -> list[str]:
        return ["action", self.kind.score_name]


def load_agent(path: str | Path, vecnormalize: str | Path | None = None) -> tuple[BasePolicy, VecNormalize | None]:
    """
    The policy of a saved agent (an SB3 zip of any algorithm, or an rl-zoo3 run folder) and its observation statistics.

    :param path: a ``.zip`` saved by ``model.save()``, or an rl-zoo3 run folder (``logs/ALGO/ENV_N``)
    :param vecnormalize: a ``VecNormalize`` pickle (``vecnormalize.pkl``); default: the one in the run folder, if any
    :return: the policy (CPU) and the ``VecNormalize`` statistics or ``None``
    """
    path = Path(path)
    if not path.exists() and not path.with_suffix(".zip").exists():
        raise ExportError(f"{path} does not exist: give the .zip saved by model.save(), or an rl-zoo3 run folder.")
    if not path.exists():
        path = path.with_suffix(".zip")
    try:
        # The loader reads any SB3 zip (and rl-zoo3's run layout, with vecnormalize.pkl) without the training state.
        agent = load_teacher(path, device="cpu")
    except TeacherError as error:
        raise ExportError(str(error)) from error
    return agent.policy, load_vecnormalize(vecnormalize) if vecnormalize is not None else agent.obs_normalizer


def _as_policy(
    agent: BaseAlgorithm | BasePolicy, obs_normalizer: VecNormalize | None
) -> tuple[BasePolicy, VecNormalize | None]:
    if isinstance(agent, BaseAlgorithm):
        return agent.policy, obs_normalizer if obs_normalizer is not None else agent.get_vec_normalize_env()
    return agent, obs_normalizer


def export(
    agent: BaseAlgorithm | BasePolicy | str | Path,
    out: str | Path,
    format: str = "onnx",
    vecnormalize: VecNormalize | str | Path | None = None,
) -> Path:
    """
    Write ``agent`` as an ONNX or TorchScript file: raw observation batch → (greedy action, scores).

    :param agent: a model (``DistillDQN``, ``PolicyDistill``, any SB3 algorithm), a policy, or a path to a saved
        model / rl-zoo3 run folder
    :param out: the file to write
    :param format: ``"onnx"`` or ``"torchscript"``
    :param vecnormalize: observation statistics to include: a ``VecNormalize`` or its pickle (default: the model's
        own VecNormalize env, or the ``vecnormalize.pkl`` of the run folder)
    :return: the path written
    """
    if format not in FORMATS:
        raise ExportError(f"Unknown format {format!r}: use one of {', '.join(FORMATS)}.")
    if format == "onnx":
        require_onnx()
    if isinstance(vecnormalize, (str, Path)):
        vecnormalize = load_vecnormalize(vecnormalize)
    if isinstance(agent, (str, Path)):
        policy, normalizer = load_agent(agent)
        normalizer = vecnormalize if vecnormalize is not None else normalizer
    else:
        policy, normalizer = _as_policy(agent, vecnormalize)
    return write_exported(ExportedPolicy(policy, normalizer), out, format)


def write_exported(module: ExportedPolicy, out: str | Path, format: str) -> Path:
    """
    :param module: the exported policy
    :param out: the file to write (its folder is created)
    :param format: ``"onnx"`` or ``"torchscript"``
    :return: the path written
    """
    example = th.as_tensor(module.policy.observation_space.sample()[None], dtype=th.float32)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: a crash or a full disk during the write leaves a previous export intact (--force overwrites).
    with warnings.catch_warnings(), atomic_path(out) as temporary:
        # Both exporters are TorchScript-based; torch announces their successors on every call.
        warnings.simplefilter("ignore")
        if format == "torchscript":
            traced = th.jit.trace(module, example)
            # Through memory: torch's C++ writer aborts the whole process (std::terminate) when the disk is full.
            buffer = io.BytesIO()
            th.jit.save(traced, buffer)  # type: ignore[no-untyped-call]
            temporary.write_bytes(buffer.getvalue())
        else:
            th.onnx.export(
                module,
                (example,),
                str(temporary),
                input_names=[INPUT_NAME],
                output_names=module.output_names,
                dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *module.output_names]},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
    return out


def load_vecnormalize(path: str | Path) -> VecNormalize:
    """
    :param path: a ``VecNormalize`` pickle (``vecnormalize.pkl``; old ``gym`` pickles too)
    :return: the statistics (never tied to an env)
    """
    try:
        return load_vec_normalize(path)
    except TeacherError as error:
        raise ExportError(str(error)) from error


def load_exported(path: str | Path) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """
    Load an exported file (onnxruntime for ``.onnx``, ``torch.jit`` otherwise) as a function of numpy observations.

    :param path: the exported file
    :return: ``f(obs_batch) -> (actions, scores)``
    """
    path = Path(path)
    if path.suffix == ".onnx":
        _, onnxruntime = require_onnx()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # small networks: one thread is fastest
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run_onnx(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            actions, scores = session.run(None, {INPUT_NAME: np.asarray(obs, dtype=np.float32)})
            return actions, scores

        return run_onnx
    module = th.jit.load(str(path))  # type: ignore[no-untyped-call]

    def run_torchscript(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with th.no_grad():
            actions, scores = module(th.as_tensor(np.asarray(obs, dtype=np.float32)))
        return actions.numpy(), scores.numpy()

    return run_torchscript


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sb3-distill export",
        description="Export a saved agent (e.g. a distilled student) to ONNX or TorchScript: raw observation -> "
        "greedy action and Q-values / logits, with its observation normalization inside.",
    )
    parser.add_argument("path", type=Path, help="the model .zip (model.save()) or an rl-zoo3 run folder")
    parser.add_argument("--format", choices=sorted(FORMATS), default="onnx", help="output format (default: onnx)")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: PATH with .onnx / .pt)")
    parser.add_argument(
        "--vecnormalize", type=Path, default=None, help="VecNormalize statistics (.pkl) to include (default: the run folder's)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--check", type=int, default=1000, help="compare with predict() on this many observations (0: no)")
    return parser.parse_args(argv)


def check_parity(
    path: str | Path, policy: BasePolicy, normalizer: VecNormalize | None, n_observations: int = 1000, seed: int = 0
) -> int:
    """
    Compare the exported file with ``policy.predict(deterministic=True)`` on observations sampled from the space.

    :param path: the exported file
    :param policy: the policy it was exported from
    :param normalizer: its observation statistics, if any (``predict()`` takes normalized observations)
    :param n_observations: number of observations
    :param seed: seed of the observation space's sampler
    :return: number of observations whose actions differ (0 for a faithful export)
    """
    space = policy.observation_space
    space.seed(seed)
    obs = np.stack([space.sample() for _ in range(n_observations)]).astype(np.float32)
    if isinstance(space, spaces.Box):
        # Unbounded dimensions sample from a wide normal; keep them in a range the agent can have seen.
        obs = np.clip(obs, -10.0, 10.0)
    actions, _ = load_exported(path)(obs)
    expected, _ = policy.predict(normalizer.normalize_obs(obs) if normalizer is not None else obs, deterministic=True)
    if isinstance(policy.action_space, spaces.Discrete):
        return int(np.sum(actions.reshape(-1) != expected.reshape(-1)))
    return int(np.sum(~np.isclose(actions, expected, atol=1e-4).all(axis=-1)))


def main(argv: Sequence[str] | None = None) -> int:
    """
    ``sb3-distill export PATH --format onnx|torchscript [--out FILE] [--vecnormalize PKL]``.

    :param argv: the arguments after ``export`` (default: ``sys.argv[1:]``)
    :return: exit status (0: written and, unless ``--check 0``, identical to predict(); 1: mismatch; 2: bad input)
    """
    args = parse_args(argv)
    stem = args.path.with_suffix("") if args.path.suffix == ".zip" else args.path
    out = args.out or stem.with_suffix(FORMATS[args.format])
    try:
        if out.exists() and not args.force:
            raise ExportError(f"{out} exists: choose another --out, or pass --force to overwrite it.")
        if args.format == "onnx":
            require_onnx()
        policy, normalizer = load_agent(args.path, args.vecnormalize)
        module = ExportedPolicy(policy, normalizer)
        write_exported(module, out, args.format)
    except ExportError as error:
        print(f"sb3-distill export: error: {error}", file=sys.stderr)
        return 2
    normalized = " (VecNormalize statistics included)" if module.normalize else ""
    shape = list(policy.observation_space.shape or ())
    print(f"Wrote {out}: {INPUT_NAME} {shape} -> {', '.join(module.output_names)}{normalized}")
    if args.check > 0:
        mismatches = check_parity(out, policy, normalizer, args.check)
        print(f"Parity with predict(deterministic=True): {args.check - mismatches}/{args.check} observations agree.")
        if mismatches:
            return 1
    return 0


__all__ = [
    "ExportError",
    "ExportedPolicy",
    "check_parity",
    "export",
    "load_agent",
    "load_exported",
    "main",
    "require_onnx",
    "write_exported",
]

if __name__ == "__main__":
    raise SystemExit(main())
