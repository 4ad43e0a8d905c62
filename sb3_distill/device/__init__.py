"""
Students on the device: dependency-free C99 (float32, or integer-only int8 / int4), sizes on a Cortex-M4, and
quantization-aware distillation for the low bit widths.

Why the generator is our own: emlearn (MIT, well kept) converts scikit-learn MLPs and Keras ``Sequential`` models,
not PyTorch modules; its networks run in float through its own headers (``eml_net.h``), which the firmware must then
carry; it has no per-channel int8 network with integer accumulation, and no place for an agent's observation
normalization or action head (argmax, tanh squashing, action bounds). The ONNX toolchain has no C back-end on the
package registries reachable here (onnx2c is a separate C++ program). Policies of this size are a handful of dense
layers, so the generator emits them directly (:mod:`sb3_distill.device.c_code`); ONNX and onnxruntime remain the
export for everything else (CNN and dict observations).

Python: :func:`write_c`, :func:`visited_observations`, :func:`~sb3_distill.device.toolchain.cortex_m4_size`,
:func:`~sb3_distill.device.qat.quantization_aware_distill`; the CLI is ``sb3-distill export --format c``.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from sb3_distill.common.files import atomic_path
from sb3_distill.device.c_code import c_identifier, float_source, integer_source
from sb3_distill.device.network import DeviceNetwork, ExportError, device_network
from sb3_distill.device.qat import quantization_aware_distill
from sb3_distill.device.quantize import (
    QUANTIZATIONS,
    QuantizedNetwork,
    agreement,
    check_calibration,
    quantize_network,
)
from sb3_distill.device.toolchain import TargetSize, cortex_m4_size, load_c

#: A quantized export is refused below this action agreement with the float student (``--force`` writes it anyway)
MIN_AGREEMENT = 0.9
#: Observations visited for calibration, and as many others for the agreement
CALIBRATION_STEPS = 2_000


@dataclass
class CExport:
    """
    What :func:`write_c` wrote.

    :param source: ``NAME.c``
    :param header: ``NAME.h``
    :param network: the float network
    :param quantized: the integer network, if quantized
    :param agreement: fraction of held-out visited observations on which the quantized student acts as the float one
        (1.0 for float)
    """

    source: Path
    header: Path
    network: DeviceNetwork
    quantized: QuantizedNetwork | None
    agreement: float


def visited_observations(network: DeviceNetwork, env: VecEnv, n: int) -> np.ndarray:
    """
    Observations the (float) student visits, acting greedily.

    :param network: the float network (raw observation → action)
    :param env: its env without ``VecNormalize`` (raw observations), already seeded
    :param n: number of observations
    :return: shape ``(n, *obs_shape)``, float32
    """
    observations: list[np.ndarray] = []
    obs = np.asarray(env.reset(), dtype=np.float32)
    while len(observations) * env.num_envs < n:
        observations.append(obs)
        actions, _ = network(obs)
        next_obs, _, _, _ = env.step(actions)
        obs = np.asarray(next_obs, dtype=np.float32)
    return np.concatenate(observations)[:n]


def write_c(
    network: DeviceNetwork,
    out: str | Path,
    quantize: str | None = None,
    calibration: np.ndarray | None = None,
    held_out: np.ndarray | None = None,
    min_agreement: float = MIN_AGREEMENT,
    trained_bounds: list[list[float]] | None = None,
) -> CExport:
    """
    Write ``NAME.h`` and ``NAME.c`` (atomically; the symbol prefix is ``NAME``).

    :param network: the float network (:func:`~sb3_distill.device.network.device_network`)
    :param out: ``NAME.c``
    :param quantize: ``None`` (float32), ``"int8"`` or ``"int4"``
    :param calibration: raw observations the student visits (needed to quantize)
    :param held_out: other visited observations, on which the agreement is measured (default: ``calibration``)
    :param min_agreement: refuse (raise) below this agreement; 0 writes any
    :param trained_bounds: activation bounds of quantization-aware distillation (see
        :func:`~sb3_distill.device.quantize.quantize_network`)
    :return: the paths and the agreement
    :raises ~sb3_distill.errors.ExportError: before anything is written
    """
    out = Path(out)
    if out.suffix != ".c":
        raise ExportError(f"A C export is written to NAME.c (and NAME.h beside it), not {out}.")
    prefix = c_identifier(out.stem)
    description = network.description or "policy"
    quantized, fraction = None, 1.0
    if quantize is not None:
        if quantize not in QUANTIZATIONS:
            raise ExportError(f"Unknown quantization {quantize!r}: use one of {', '.join(QUANTIZATIONS)}.")
        if calibration is None:
            raise ExportError("Quantizing needs calibration observations (visited by the student).")
        quantized = quantize_network(network, calibration, quantize, trained_bounds)
        held_out = calibration if held_out is None else held_out
        check_calibration(held_out, network.obs_dim)
        fraction = agreement(network(held_out), quantized(held_out), network)
        if fraction < min_agreement:
            raise ExportError(
                f"The {quantize} student acts as the float one on only {fraction:.3f} of {len(held_out)} visited "
                f"observations (threshold {min_agreement}). Nothing was written. Train it for the quantization with "
                f"sb3_distill.device.quantization_aware_distill(model, quantization={quantize!r}), or pass --force "
                "(Python: min_agreement=0) to write it anyway."
            )
        header, source = integer_source(prefix, quantized, description)
    else:
        header, source = float_source(prefix, network, description)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out.with_suffix(".h")) as temporary:
        temporary.write_text(header)
    with atomic_path(out) as temporary:
        temporary.write_text(source)
    return CExport(out, out.with_suffix(".h"), network, quantized, fraction)


__all__ = [
    "CALIBRATION_STEPS",
    "MIN_AGREEMENT",
    "CExport",
    "DeviceNetwork",
    "QuantizedNetwork",
    "TargetSize",
    "cortex_m4_size",
    "device_network",
    "load_c",
    "quantization_aware_distill",
    "visited_observations",
    "write_c",
]
