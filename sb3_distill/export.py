"""
Export a trained agent (typically a distilled student) for deployment: ONNX, TorchScript, or C (float32 or integer).

The exported file maps a batch of *raw* observations (float32, shape ``(batch, *obs_shape)``) to the greedy action
and, beside it, the scores it was chosen from: Q-values (DQN, DistillDQN; QR-DQN: mean over quantiles), action logits
(PPO, A2C, PolicyDistill students), or the policy's raw action output (continuous actions). The agent's own
observation preprocessing is inside: SB3's ``preprocess_obs`` and, if given (or found beside the model in an
rl-zoo3 run folder), its ``VecNormalize`` observation statistics — clip((obs − mean) / sqrt(var + ε), ±clip_obs).

::

    sb3-distill export student.zip --format onnx                       # -> student.onnx
    sb3-distill export logs/distill_dqn/LunarLander-v3_1 --format torchscript --out lander.pt
    sb3-distill export student.zip --format onnx --vecnormalize vecnormalize.pkl
    sb3-distill export student.zip --format c                          # -> student.c + student.h (float32)
    sb3-distill export student.zip --format c --quantize int8          # integer-only C, calibrated on visited obs

Python: :func:`export` (a file or an in-memory model), :func:`load_exported` (a callable on numpy observations).
ONNX needs the optional extra ``onnx`` (``pip install "sb3-distill[onnx]"``): ``onnx`` and ``onnxruntime``.
C needs nothing to write and a C compiler to load (:mod:`sb3_distill.device`: the generator, the integer scheme and
why it is not emlearn's); ``--quantize int8`` also works for ONNX (onnxruntime's static quantization, calibrated on
the same visited observations).
"""

import argparse
import importlib
import io
import logging
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

from sb3_distill.common.files import atomic_path
from sb3_distill.device import CALIBRATION_STEPS, MIN_AGREEMENT, DeviceNetwork, device_network, load_c, write_c
from sb3_distill.device.network import check_observation_space
from sb3_distill.device.quantize import QUANTIZATIONS, agreement, check_calibration
from sb3_distill.errors import ExportError, TeacherError
from sb3_distill.teachers import Teacher, copy_policy, load_teacher, load_vec_normalize, policy_kind

FORMATS: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt", "c": ".c"}
#: Quantizations each format has
FORMAT_QUANTIZATIONS: dict[str, tuple[str, ...]] = {"c": tuple(QUANTIZATIONS), "onnx": ("int8",), "torchscript": ()}
#: ONNX opset of the exported graphs (supported by every onnxruntime of the last years)
ONNX_OPSET = 17
INPUT_NAME = "observation"


def require_onnx() -> tuple[Any, Any]:
    """
    :return: the ``onnx`` and ``onnxruntime`` modules
    :raises ~sb3_distill.errors.ExportError: naming the extra to install when either is missing
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
    agent = _load_saved(path)
    return agent.policy, load_vecnormalize(vecnormalize) if vecnormalize is not None else agent.obs_normalizer


def _load_saved(path: str | Path) -> Teacher:
    path = Path(path)
    if not path.exists() and not path.with_suffix(".zip").exists():
        raise ExportError(f"{path} does not exist: give the .zip saved by model.save(), or an rl-zoo3 run folder.")
    if not path.exists():
        path = path.with_suffix(".zip")
    try:
        # The loader reads any SB3 zip (and rl-zoo3's run layout, with vecnormalize.pkl) without the training state.
        return load_teacher(path, device="cpu")
    except TeacherError as error:
        raise ExportError(str(error)) from error


def _as_policy(
    agent: BaseAlgorithm | BasePolicy, obs_normalizer: VecNormalize | None
) -> tuple[BasePolicy, VecNormalize | None]:
    if isinstance(agent, BaseAlgorithm):
        return agent.policy, obs_normalizer if obs_normalizer is not None else agent.get_vec_normalize_env()
    return agent, obs_normalizer


def trained_quantization(agent: BaseAlgorithm | BasePolicy | Teacher | None) -> dict[str, Any] | None:
    """
    :param agent: a model, a policy, or a saved agent as loaded
    :return: what :func:`~sb3_distill.device.qat.quantization_aware_distill` left in the model
        (``{"quantization": ..., "bounds": ...}``), or ``None``
    """
    if isinstance(agent, BaseAlgorithm):
        return getattr(agent, "device_quantization", None)
    if isinstance(agent, Teacher) and agent.source_path is not None and agent.source_path.suffix == ".zip":
        from stable_baselines3.common.save_util import load_from_zip_file

        data, _, _ = load_from_zip_file(agent.source_path, device="cpu", load_data=True)
        found = (data or {}).get("device_quantization")
        return found if isinstance(found, dict) else None
    return None


def check_quantization(format: str, quantize: str | None) -> None:
    """
    :param format: an export format
    :param quantize: a quantization or ``None``
    :raises ~sb3_distill.errors.ExportError: for an unknown format or a quantization the format does not have
    """
    if format not in FORMATS:
        raise ExportError(f"Unknown format {format!r}: use one of {', '.join(FORMATS)}.")
    if quantize is not None and quantize not in FORMAT_QUANTIZATIONS[format]:
        known = sorted({q for qs in FORMAT_QUANTIZATIONS.values() for q in qs})
        what = "Unknown quantization" if quantize not in known else f"The {format} format has no quantization"
        offered = ", ".join(f"{q} ({', '.join(f for f, qs in FORMAT_QUANTIZATIONS.items() if q in qs)})" for q in known)
        raise ExportError(f"{what} {quantize!r}: quantizations (formats) are {offered}.")


def network_of(module: ExportedPolicy, check_obs: np.ndarray | None = None) -> DeviceNetwork:
    """
    :param module: the exported policy (its policy, kind and observation statistics)
    :param check_obs: raw observations on which the arrays are checked against the policy (default: sampled)
    :return: its acting network as arrays, for C
    :raises ~sb3_distill.errors.ExportError: naming ONNX for what C does not cover (CNN, dict observations)
    """
    if check_obs is None:
        check_obs = sample_observations(module.policy.observation_space, 200)
    return device_network(
        module.policy,
        module.kind,
        module.obs_mean.numpy(),
        module.obs_std.numpy(),
        module.clip_obs if module.normalize else float("inf"),
        check_obs=check_obs,
    )


def sample_observations(space: spaces.Space, n: int, seed: int = 0) -> np.ndarray:
    """
    :param space: a Box observation space
    :param n: number of observations
    :param seed: seed of the sampler
    :return: samples, unbounded dimensions kept in ±10 (where an agent can have been)
    """
    space.seed(seed)
    obs = np.stack([space.sample() for _ in range(n)]).astype(np.float32)
    return np.clip(obs, -10.0, 10.0) if isinstance(space, spaces.Box) else obs


def calibration_data(
    network: DeviceNetwork, calibration: np.ndarray | str | None, teacher: Teacher | None, n: int = CALIBRATION_STEPS
) -> tuple[np.ndarray, np.ndarray]:
    """
    Observations the student visits: to calibrate the activation scales, and others to measure the agreement.

    :param network: the float student
    :param calibration: raw observations (used for both), an env id, or ``None`` (the agent's own env)
    :param teacher: the agent as loaded (gives its env, with the wrappers of its run folder)
    :param n: observations of each set
    :return: ``(calibration, held_out)``
    """
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill.device import visited_observations

    if isinstance(calibration, np.ndarray):
        check_calibration(calibration, network.obs_dim)
        return calibration, calibration
    if calibration is None and (teacher is None or teacher.env_id is None):
        raise ExportError("Quantizing needs observations the student visits: pass calibration=ENV_ID (--env ENV_ID).")
    sets = []
    for seed in (0, 1):
        env = make_vec_env(calibration, n_envs=1, seed=seed) if isinstance(calibration, str) else teacher.make_env(1, seed)  # type: ignore[union-attr]
        try:
            sets.append(visited_observations(network, env, n))
        finally:
            env.close()
    for observations in sets:
        check_calibration(observations, network.obs_dim)
    return sets[0], sets[1]


def export(
    agent: BaseAlgorithm | BasePolicy | str | Path,
    out: str | Path,
    format: str = "onnx",
    vecnormalize: VecNormalize | str | Path | None = None,
    quantize: str | None = None,
    calibration: np.ndarray | str | None = None,
    min_agreement: float = MIN_AGREEMENT,
) -> Path:
    """
    Write ``agent`` as an ONNX, TorchScript or C file: raw observation batch → (greedy action, scores).

    :param agent: a model (``DistillDQN``, ``PolicyDistill``, any SB3 algorithm), a policy, or a path to a saved
        model / rl-zoo3 run folder
    :param out: the file to write (C: ``NAME.c``, and ``NAME.h`` beside it)
    :param format: ``"onnx"``, ``"torchscript"`` or ``"c"``
    :param vecnormalize: observation statistics to include: a ``VecNormalize`` or its pickle (default: the model's
        own VecNormalize env, or the ``vecnormalize.pkl`` of the run folder)
    :param quantize: ``None`` (float32); ``"int8"`` (C, ONNX) or ``"int4"`` (C): weights per output channel,
        activations per tensor, calibrated on observations the student visits
    :param calibration: for ``quantize``: raw observations, or an env id to visit (default: the agent's env)
    :param min_agreement: for ``quantize``: refuse (:class:`~sb3_distill.errors.ExportError`, nothing written) when
        the quantized student takes the float student's action on fewer held-out visited observations than this (0: write
        any)
    :return: the path written
    """
    check_quantization(format, quantize)
    if format == "onnx":
        require_onnx()
    if isinstance(vecnormalize, (str, Path)):
        vecnormalize = load_vecnormalize(vecnormalize)
    teacher: Teacher | None = None
    if isinstance(agent, (str, Path)):
        teacher = _load_saved(agent)
        policy, normalizer = teacher.policy, vecnormalize if vecnormalize is not None else teacher.obs_normalizer
    else:
        policy, normalizer = _as_policy(agent, vecnormalize)
        if isinstance(agent, BaseAlgorithm) and quantize is not None and calibration is None:
            teacher = load_teacher(agent, device="cpu")
    if format == "c":
        check_observation_space(policy.observation_space)
    module = ExportedPolicy(policy, normalizer)
    trained = trained_quantization(teacher if isinstance(agent, (str, Path)) else agent)
    return write_module(module, out, format, quantize, calibration, teacher, min_agreement, trained)[0]


def write_module(
    module: "ExportedPolicy",
    out: str | Path,
    format: str,
    quantize: str | None = None,
    calibration: np.ndarray | str | None = None,
    teacher: Teacher | None = None,
    min_agreement: float = MIN_AGREEMENT,
    trained: dict[str, Any] | None = None,
) -> tuple[Path, float]:
    """
    :param module: the exported policy
    :param out: the file to write
    :param format: an export format
    :param quantize: a quantization of that format, or ``None``
    :param calibration: see :func:`export`
    :param teacher: the agent as loaded (its env calibrates, when ``calibration`` is ``None``)
    :param min_agreement: see :func:`export`
    :param trained: what quantization-aware distillation left in the model (:func:`trained_quantization`): its
        activation bounds are used when it trained for ``quantize``
    :return: the path written and the agreement with the float student (1.0 unquantized)
    """
    if format == "c" or quantize is not None:
        if isinstance(calibration, np.ndarray):
            check_calibration(calibration, int(np.prod(module.policy.observation_space.shape or (1,))))
        network = network_of(module, calibration if isinstance(calibration, np.ndarray) else None)
        if quantize is not None:
            calibration_set, held_out = calibration_data(network, calibration, teacher)
        if format == "c":
            if quantize is None:
                written = write_c(network, out)
            else:
                bounds = trained["bounds"] if trained is not None and trained.get("quantization") == quantize else None
                written = write_c(network, out, quantize, calibration_set, held_out, min_agreement, bounds)
            return written.source, written.agreement
        return write_quantized_onnx(module, network, out, calibration_set, held_out, min_agreement)
    return write_exported(module, out, format), 1.0


def _quantize_static(float_path: Path, quantized_path: Path, reader: Any) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(float_path),
        str(quantized_path),
        reader,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul", "Gemm"],
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )


def write_quantized_onnx(
    module: "ExportedPolicy",
    network: DeviceNetwork,
    out: str | Path,
    calibration: np.ndarray,
    held_out: np.ndarray,
    min_agreement: float = MIN_AGREEMENT,
) -> tuple[Path, float]:
    """
    ONNX with int8 weights (per channel) and activations (QDQ), by onnxruntime's static quantization.

    :param module: the exported policy
    :param network: its float network (reference of the agreement)
    :param out: the ``.onnx`` to write
    :param calibration: raw visited observations for onnxruntime's calibration
    :param held_out: others, for the agreement
    :param min_agreement: see :func:`export`
    :return: the path and the agreement
    """
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter([{INPUT_NAME: calibration[i : i + 256]} for i in range(0, len(calibration), 256)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    out = Path(out)
    root_logger = logging.getLogger()
    level = root_logger.level
    with tempfile.TemporaryDirectory() as work:
        float_path = write_exported(module, Path(work) / "float.onnx", "onnx")
        quantized_path = Path(work) / "int8.onnx"
        # onnxruntime advises its pre-processing (shape inference for large vision models) on the root logger.
        root_logger.setLevel(logging.ERROR)
        try:
            _quantize_static(float_path, quantized_path, Reader())
        finally:
            root_logger.setLevel(level)
        fraction = agreement(network(held_out), load_exported(quantized_path)(held_out), network)
        if fraction < min_agreement:
            raise ExportError(
                f"The int8 ONNX student acts as the float one on only {fraction:.3f} of {len(held_out)} visited "
                f"observations (threshold {min_agreement}). Nothing was written. Pass --force (Python: "
                "min_agreement=0) to write it anyway."
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as temporary:
            temporary.write_bytes(quantized_path.read_bytes())
    return out, fraction


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
    Load an exported file as a function of numpy observations: onnxruntime for ``.onnx``; for ``.c``, the system's C
    compiler builds a shared library once (cached, see :func:`sb3_distill.device.toolchain.cache_folder`), called
    through ctypes, so that ``evaluate_policy`` can run the very code that will be flashed; ``torch.jit`` otherwise.

    :param path: the exported file
    :return: ``f(obs_batch) -> (actions, scores)``
    """
    path = Path(path)
    if path.suffix == ".c":
        return load_c(path)
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
        description="Export a saved agent (e.g. a distilled student) to ONNX, TorchScript or C: raw observation -> "
        "greedy action and Q-values / logits, with its observation normalization inside.",
    )
    parser.add_argument("path", type=Path, help="the model .zip (model.save()) or an rl-zoo3 run folder")
    parser.add_argument("--format", choices=sorted(FORMATS), default="onnx", help="output format (default: onnx)")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: PATH with .onnx / .pt / .c)")
    parser.add_argument(
        "--vecnormalize", type=Path, default=None, help="VecNormalize statistics (.pkl) to include (default: the run folder's)"
    )
    parser.add_argument(
        "--quantize",
        default=None,
        help="integer student: int8 (c, onnx) or int4 (c); calibrated on observations the student visits",
    )
    parser.add_argument("--env", default=None, help="with --quantize: env to visit for calibration (default: the model's)")
    parser.add_argument(
        "--calibration", type=Path, default=None, help="with --quantize: raw observations (.npy) instead of visiting an env"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"overwrite an existing output file; with --quantize, write even below {MIN_AGREEMENT} action agreement",
    )
    parser.add_argument("--check", type=int, default=1000, help="compare with predict() on this many observations (0: no)")
    parser.add_argument(
        "--cortex-m4", action="store_true", help="with --format c: cross-compile for a Cortex-M4 and print flash / RAM bytes"
    )
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


def _outputs(out: Path, format: str) -> list[Path]:
    return [out, out.with_suffix(".h")] if format == "c" else [out]


def main(argv: Sequence[str] | None = None) -> int:
    """
    ``sb3-distill export PATH --format onnx|torchscript|c [--quantize int8|int4] [--out FILE] [--vecnormalize PKL]``.

    :param argv: the arguments after ``export`` (default: ``sys.argv[1:]``)
    :return: exit status (0: written and, unless ``--check 0``, identical to predict(); 1: mismatch; 2: bad input)
    """
    args = parse_args(argv)
    stem = args.path.with_suffix("") if args.path.suffix == ".zip" else args.path
    out = args.out or stem.with_suffix(FORMATS[args.format])
    try:
        check_quantization(args.format, args.quantize)
        if args.format == "c" and out.suffix != ".c":
            raise ExportError(f"--format c writes NAME.c and NAME.h: give --out NAME.c, not {out}.")
        existing = [path for path in _outputs(out, args.format) if path.exists()]
        if existing and not args.force:
            raise ExportError(f"{existing[0]} exists: choose another --out, or pass --force to overwrite it.")
        calibration: np.ndarray | str | None = args.env
        if args.calibration is not None:
            calibration = np.load(args.calibration)
        if args.format == "onnx":
            require_onnx()
        teacher = _load_saved(args.path)
        policy = teacher.policy
        normalizer = load_vecnormalize(args.vecnormalize) if args.vecnormalize is not None else teacher.obs_normalizer
        if args.format == "c":
            check_observation_space(policy.observation_space)
        module = ExportedPolicy(policy, normalizer)
        minimum = 0.0 if args.force else MIN_AGREEMENT
        trained = trained_quantization(teacher) if args.quantize is not None else None
        _, fraction = write_module(module, out, args.format, args.quantize, calibration, teacher, minimum, trained)
    except (ExportError, OSError) as error:
        print(f"sb3-distill export: error: {error}", file=sys.stderr)
        return 2
    normalized = " (VecNormalize statistics included)" if module.normalize else ""
    shape = list(policy.observation_space.shape or ())
    written = " + ".join(str(path) for path in _outputs(out, args.format))
    print(f"Wrote {written}: {INPUT_NAME} {shape} -> {', '.join(module.output_names)}{normalized}")
    if args.quantize is not None:
        print(f"{args.quantize}: same action as the float student on {fraction:.3f} of the held-out visited observations.")
    if args.format == "c" and args.cortex_m4:
        from sb3_distill.device import cortex_m4_size

        try:
            size = cortex_m4_size(out)
        except ExportError as error:
            print(f"sb3-distill export: error: {error}", file=sys.stderr)
            return 2
        print(
            f"Cortex-M4: flash {size.flash} B (text {size.text}, rodata {size.rodata}), RAM {size.ram} B (stack {size.stack})."
        )
    if args.check > 0 and args.quantize is None:
        mismatches = check_parity(out, policy, normalizer, args.check)
        print(f"Parity with predict(deterministic=True): {args.check - mismatches}/{args.check} observations agree.")
        if mismatches:
            return 1
    return 0


__all__ = [
    "FORMAT_QUANTIZATIONS",
    "ExportError",
    "ExportedPolicy",
    "check_parity",
    "export",
    "load_agent",
    "load_exported",
    "main",
    "network_of",
    "require_onnx",
    "write_exported",
]

if __name__ == "__main__":
    raise SystemExit(main())
