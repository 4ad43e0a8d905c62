"""
Post-training integer quantization of a :class:`~sb3_distill.device.network.DeviceNetwork`, for integer-only C.

The scheme (symmetric, no zero points, as in TFLite's int8 kernels and CMSIS-NN):

* weights: per output channel, ``w_q = round(w / s_w[c])`` with ``s_w[c] = max|w[c, :]| / q_max``
  (``q_max`` = 127 for 8 bits, 7 for 4 bits);
* activations: per tensor, ``x_q = round(x / s_x)`` clamped to ±``q_max``, with ``s_x`` calibrated as the largest
  ``|x|`` over observations the student visits (``calibration``). The normalized observation has a scale per
  dimension (its dimensions have unrelated ranges: CartPole's pole angle spans ±0.2, its velocities ±2), a power of
  two apart from the largest one (``s_j = s_0 / 2^k_j``, ``k_j ≤ 8``), so that the first layer shifts each input to a
  common unit (an int16) and its weights stay plain per-channel int8 (those quantization-aware distillation trained);
* a layer accumulates ``Σ w_q · x_q + b_q`` in int32 (``b_q = round(b / (s_w[c] s_x))``) and rescales the sum to the
  next activation's scale with a fixed-point multiplier per output channel (int16) and a right shift per layer
  (int32 × int16 → int64, one ``SMULL`` on a Cortex-M), so that nothing between the input and the head needs
  floating point;
* ReLU is a clamp to [0, 2 q_max + 1] (its outputs are unsigned: uint8 for 8 bits); other activations (tanh,
  sigmoid, ELU, ...) are a lookup table from the pre-activation's ``2 q_max + 1`` levels to the output's;
* the last layer keeps its int32 sum at a fine common scale (``max|y| / 32767``) so that the greedy action is an
  integer argmax.

Only the observation's normalization and quantization (one multiply per input) and a continuous action's head
(tanh, bounds) use floats. :func:`integer_forward` is the bit-exact numpy model of the generated C.
"""

from dataclasses import dataclass

import numpy as np

from sb3_distill.device.network import Activation, ExportError, DeviceNetwork

#: Supported quantizations (bits of weights and activations)
QUANTIZATIONS: dict[str, int] = {"int8": 8, "int4": 4, "int3": 3, "int2": 2}
#: Scale of the last layer's int32 sums: the largest calibrated absolute score maps to this
OUTPUT_LEVELS = 32767


@dataclass
class QuantizedDense:
    """
    One integer layer.

    :param weight: int8 values in ±q_max, shape (out, in)
    :param bias: int32, shape (out,), a multiple of ``2^bias_shift``
    :param bias_shift: the C code stores ``bias / 2^bias_shift`` as int16 (the bits dropped are far below one
        output level)
    :param multiplier: int16 fixed-point multipliers (the largest in [2^14, 2^15)), shape (out,)
    :param shift: the layer's right shift (1..62), repeated per channel, shape (out,)
    :param low: lower clamp of the rescaled sum (−q_max; 0 for ReLU; ``None``: int32 output, the last layer)
    :param high: upper clamp (q_max; 2 q_max + 1 for ReLU, whose outputs are unsigned; ``None`` for the last layer)
    :param table: lookup table from the clamped pre-activation (index + q_max) to the output, or ``None``
    :param scale: scale of this layer's output
    """

    weight: np.ndarray
    bias: np.ndarray
    bias_shift: int
    multiplier: np.ndarray
    shift: np.ndarray
    low: int | None
    high: int | None
    table: np.ndarray | None
    scale: float


@dataclass
class QuantizedNetwork:
    """
    :param network: the float network (normalization, head, and the reference for agreement)
    :param bits: bits of weights and activations
    :param input_scale: scale of the quantized normalized observation, per dimension (``s_0 / 2^k_j``)
    :param input_shift: left shift of each quantized input to the first layer's common unit ``s_0 / 2^max(k)``
    :param layers: the integer layers
    """

    network: DeviceNetwork
    bits: int
    input_scale: np.ndarray
    input_shift: np.ndarray
    layers: list[QuantizedDense]

    @property
    def q_max(self) -> int:
        """Largest quantized magnitude."""
        return 2 ** (self.bits - 1) - 1

    def __call__(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        :param obs: raw observations, shape ``(batch, *obs_shape)``
        :return: ``(actions, scores)`` exactly as the generated C computes them
        """
        scores = integer_forward(self, obs).astype(np.float64) * self.layers[-1].scale
        return self.network.actions_from_scores(scores), scores.astype(np.float32)


def quantize_input(obs: np.ndarray, network: DeviceNetwork, input_scale: np.ndarray, q_max: int) -> np.ndarray:
    """
    :param obs: raw observations
    :param network: gives the normalization
    :param input_scale: scales of the quantized input, per dimension
    :param q_max: largest magnitude
    :return: int64 quantized inputs, rounded half away from zero as the C code does (float32 arithmetic)
    """
    inverse = input_inverse_scale(input_scale)
    value = np.clip(network.normalize(obs) * inverse, np.float32(-q_max), np.float32(q_max)).astype(np.float32)
    half = np.where(value < 0, np.float32(-0.5), np.float32(0.5)).astype(np.float32)
    return np.trunc((value + half).astype(np.float32)).astype(np.int64)


def requantize(accumulator: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """
    :param accumulator: int64 sums, shape (batch, out)
    :param multiplier: per output channel
    :param shift: per output channel
    :return: ``(acc · m + 2^(shift−1)) >> shift`` (arithmetic shift: rounds half up), int64
    """
    product = accumulator.astype(np.int64) * multiplier.astype(np.int64) + (np.int64(1) << (shift.astype(np.int64) - 1))
    return product >> shift.astype(np.int64)


def integer_forward(quantized: QuantizedNetwork, obs: np.ndarray) -> np.ndarray:
    """
    :param quantized: the integer network
    :param obs: raw observations
    :return: the last layer's int64 outputs (scores / ``layers[-1].scale``)
    """
    x = quantize_input(obs, quantized.network, quantized.input_scale, quantized.q_max) << quantized.input_shift.astype(
        np.int64
    )
    for layer in quantized.layers:
        x = layer_forward(layer, x, quantized.q_max)
    return x


def layer_forward(layer: QuantizedDense, x: np.ndarray, q_max: int) -> np.ndarray:
    """
    :param layer: an integer layer
    :param x: its int64 inputs, shape (batch, in)
    :param q_max: largest quantized magnitude
    :return: its int64 outputs, as the C code computes them
    """
    accumulator = x @ layer.weight.astype(np.int64).T + layer.bias.astype(np.int64)
    if np.any(np.abs(accumulator) >= 2**31):
        raise ExportError("An int32 sum overflows: the calibration data do not cover the observations.")
    y = requantize(accumulator, layer.multiplier, layer.shift)
    if layer.low is not None and layer.high is not None:
        y = np.clip(y, layer.low, layer.high)
    if layer.table is not None:
        y = layer.table.astype(np.int64)[y + q_max]
    return y


def input_inverse_scale(input_scale: np.ndarray) -> np.ndarray:
    """
    :param input_scale: scales of the input, per dimension
    :return: their inverses as float32 (the constants of the C code)
    """
    return (1.0 / np.asarray(input_scale, dtype=np.float64)).astype(np.float32)


#: Largest power-of-two ratio between the scales of two input dimensions
MAX_INPUT_SHIFT = 8


def input_scales(magnitudes: np.ndarray, q_max: int) -> tuple[np.ndarray, np.ndarray]:
    """
    :param magnitudes: the largest absolute normalized observation per dimension
    :param q_max: largest quantized magnitude
    :return: the scale of each dimension (``s_0 / 2^k_j``, ``s_0 = max / q_max``) and its left shift to the common unit
        (``max(k) − k_j``)
    """
    magnitudes = np.asarray(magnitudes, dtype=np.float64)
    largest = float(np.max(magnitudes)) if magnitudes.size else 0.0
    base = _scale(largest, q_max)
    with np.errstate(divide="ignore"):
        ratio = np.where(magnitudes > 0, largest / np.where(magnitudes > 0, magnitudes, 1.0), np.inf)
    k = np.clip(np.floor(np.log2(np.maximum(ratio, 1.0))), 0, MAX_INPUT_SHIFT).astype(np.int64)
    return base / 2.0**k, (k.max(initial=0) - k).astype(np.int64)


def clipping_magnitude(values: np.ndarray, q_max: int, candidates: int = 50) -> float:
    """
    The clipping bound of a tensor that minimizes its quantization error (mean squared, over the calibration data).

    The largest value wastes most levels on rare outliers (a ReLU layer's largest output is often several times its
    typical one); a bound below it clips those few and rounds every other value finer.

    :param values: calibration values of one tensor (any shape)
    :param q_max: largest quantized magnitude
    :param candidates: bounds tried, evenly from 1/candidates of the largest value to the largest
    :return: the bound (the scale is bound / q_max)
    """
    flat = np.abs(np.asarray(values, dtype=np.float64).reshape(-1))
    largest = float(flat.max()) if flat.size else 0.0
    if largest <= 0 or not np.isfinite(largest):
        return largest
    if flat.size > 20_000:
        flat = np.random.default_rng(0).choice(flat, 20_000, replace=False)
    bounds = largest * np.arange(1, candidates + 1) / candidates
    scales = bounds / q_max
    errors = [np.mean((np.minimum(np.round(flat / scale), q_max) * scale - flat) ** 2) for scale in scales]
    return float(bounds[int(np.argmin(errors))])


def _scale(magnitude: float, levels: int) -> float:
    return float(magnitude) / levels if magnitude > 0 and np.isfinite(magnitude) else 1.0


def fixed_point(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Per-channel rescaling factors as int16 multipliers and one right shift for the layer (flash: 2 bytes a channel).

    :param real: positive real multipliers of one layer's channels
    :return: multipliers ``m`` (the largest in [2^14, 2^15)) and the layer's shift (repeated per channel), with
        ``real ≈ m · 2^−shift``; a channel 2^k times smaller than the largest keeps 15 − k significant bits
    """
    real = np.asarray(real, dtype=np.float64)
    _, exponent = np.frexp(np.max(real))
    shift = 15 - int(exponent)
    multiplier = np.round(real * 2.0**shift).astype(np.int64)
    if np.max(multiplier) >= 2**15:  # rounded up to 2^15
        shift -= 1
        multiplier = np.round(real * 2.0**shift).astype(np.int64)
    if shift > 62:
        raise ExportError("A layer's rescaling factors are too small for the fixed-point code (all weights ~0?).")
    if shift < 1:
        raise ExportError("A layer's rescaling factor is too large for the fixed-point code (weights ≥ 2^14).")
    return multiplier.astype(np.int16), np.full(real.shape, shift, dtype=np.int32)


def quantize_network(
    network: DeviceNetwork,
    calibration: np.ndarray,
    quantization: str = "int8",
    trained_bounds: list[list[float]] | None = None,
) -> QuantizedNetwork:
    """
    Quantize a network with activation scales calibrated on observations.

    :param network: the float network
    :param calibration: raw observations the student visits, shape ``(n, *obs_shape)``
    :param quantization: ``"int8"``, ``"int4"``, ``"int3"`` or ``"int2"``
    :param trained_bounds: the clipping bounds of each layer's input that quantization-aware distillation trained
        with (the observation's per dimension first), used instead of calibrated ones and without bias correction
        (the training already accounted for the rounding); ``None``: post-training quantization
    :return: the integer network
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"Unknown quantization {quantization!r}: use one of {', '.join(QUANTIZATIONS)}.")
    check_calibration(calibration, network.obs_dim)
    bits = QUANTIZATIONS[quantization]
    q_max = 2 ** (bits - 1) - 1
    x = network.normalize(calibration).astype(np.float64)
    if trained_bounds is not None and len(trained_bounds) != len(network.layers):
        raise ExportError(f"{len(trained_bounds)} trained bounds for {len(network.layers)} layers: distill it again.")
    input_bounds = [clipping_magnitude(column, q_max) for column in x.T] if trained_bounds is None else trained_bounds[0]
    input_scale, input_shift = input_scales(np.asarray(input_bounds, dtype=np.float64), q_max)
    in_scale = float(np.min(input_scale))  # the first layer's common unit
    x_int = quantize_input(calibration, network, input_scale, q_max) << input_shift
    layers = []
    for index, dense in enumerate(network.layers):
        last = index == len(network.layers) - 1
        pre = x @ dense.weight.T.astype(np.float64) + dense.bias.astype(np.float64)
        y = dense(x)
        weight_scale = np.array([_scale(m, q_max) for m in np.max(np.abs(dense.weight), axis=1)])
        weight = np.clip(np.round(dense.weight / weight_scale[:, None]), -q_max, q_max).astype(np.int8)
        sum_unit = weight_scale * in_scale
        # Bias correction (Nagel et al. 2019): the rounding of weights and inputs shifts each output's mean; the
        # bias takes that shift back, measured on the calibration data through the integer layers before this one.
        shifted = (x_int @ weight.astype(np.int64).T) * sum_unit - (pre - dense.bias.astype(np.float64))
        bias_real = dense.bias.astype(np.float64) - (np.mean(shifted, axis=0) if trained_bounds is None else 0.0)
        bias_units = np.clip(np.round(bias_real / sum_unit), -(2**31) + 1, 2**31 - 1)
        bias_shift = 0
        while np.max(np.abs(np.round(bias_units / 2**bias_shift)), initial=0) > 2**15 - 1:
            bias_shift += 1
        bias = (np.round(bias_units / 2**bias_shift) * 2**bias_shift).astype(np.int32)
        table = None
        only_relu = [a.name for a in dense.activations] == ["relu"]
        if last and not dense.activations:
            low, high, out_scale, sum_scale = None, None, _scale(np.max(np.abs(y)), OUTPUT_LEVELS), None
        elif not dense.activations or only_relu:
            # ReLU's outputs are never negative: unsigned levels (uint8 for 8 bits), twice as fine.
            (low, high), sum_scale = ((0, 2 * q_max + 1) if only_relu else (-q_max, q_max)), None
            bound = clipping_magnitude(y, high) if trained_bounds is None else float(trained_bounds[index + 1][0])
            out_scale = _scale(bound, high)
        else:
            # Pre-activation at its own scale, then a table to the output levels.
            sum_scale = _scale(clipping_magnitude(pre, q_max), q_max)
            levels = np.arange(-q_max, q_max + 1, dtype=np.float64) * sum_scale
            activated = _apply(dense.activations, levels)
            out_scale = _scale(np.max(np.abs(activated)), q_max)
            table = np.clip(np.round(activated / out_scale), -q_max, q_max).astype(np.int8)
            low, high = -q_max, q_max
        multiplier, shift = fixed_point(weight_scale * in_scale / (sum_scale if sum_scale is not None else out_scale))
        layers.append(QuantizedDense(weight, bias, bias_shift, multiplier, shift, low, high, table, out_scale))
        x_int = layer_forward(layers[-1], x_int, q_max)
        x, in_scale = y, out_scale
    return QuantizedNetwork(network, bits, input_scale, input_shift, layers)


def _apply(activations: list[Activation], x: np.ndarray) -> np.ndarray:
    for activation in activations:
        x = activation(x)
    return x


def packed_field_bits(bits: int) -> int:
    """
    :param bits: bits of a quantized weight
    :return: the bits each weight takes in the C export's flash: 8 (int8, one per byte), 4 (int4 and int3: two per
        byte) or 2 (int2: four per byte); a field never straddles a byte
    """
    return 8 if bits > 4 else (4 if bits > 2 else 2)


def pack_weights(weight: np.ndarray, field: int) -> np.ndarray:
    """
    Pack a layer's integer weights, row-major, ``8 // field`` to a byte, the first in the lowest bits, each in
    ``field``-bit two's complement (the last byte padded with zeros).

    :param weight: integer weights in ±(2^(field−1) − 1), shape (out, in)
    :param field: bits per weight: 2 or 4
    :return: uint8 bytes, ``ceil(weight.size * field / 8)`` of them
    """
    if field not in (2, 4):
        raise ValueError(f"Weights are packed 2 or 4 bits to a field, not {field}.")
    values = np.asarray(weight, dtype=np.int64).reshape(-1)
    limit = 2 ** (field - 1) - 1
    if np.any(np.abs(values) > limit):
        raise ValueError(f"Weights beyond ±{limit} do not fit {field} bits.")
    per_byte = 8 // field
    fields = np.zeros(-(-values.size // per_byte) * per_byte, dtype=np.int64)
    fields[: values.size] = values & ((1 << field) - 1)
    shifts = np.arange(per_byte, dtype=np.int64) * field
    return (fields.reshape(-1, per_byte) << shifts).sum(axis=1).astype(np.uint8)


def unpack_weights(packed: np.ndarray, field: int, shape: tuple[int, int]) -> np.ndarray:
    """
    The inverse of :func:`pack_weights` (what the generated C computes for each weight).

    :param packed: the bytes
    :param field: bits per weight: 2 or 4
    :param shape: the layer's (out, in)
    :return: int64 weights
    """
    per_byte = 8 // field
    shifts = np.arange(per_byte, dtype=np.int64) * field
    fields = (np.asarray(packed, dtype=np.int64)[:, None] >> shifts) & ((1 << field) - 1)
    half = 1 << (field - 1)
    return ((fields.reshape(-1)[: shape[0] * shape[1]] ^ half) - half).reshape(shape)


def check_calibration(calibration: np.ndarray, obs_dim: int) -> None:
    """
    :param calibration: raw observations
    :param obs_dim: the flattened observation length they must have
    :raises ~sb3_distill.errors.ExportError: when empty, of another shape, or not finite
    """
    calibration = np.asarray(calibration)
    if calibration.ndim < 1 or len(calibration) == 0:
        raise ExportError("The calibration data are empty: give observations the student visits.")
    if int(np.prod(calibration.shape[1:])) != obs_dim:
        raise ExportError(
            f"The calibration observations have shape {calibration.shape[1:]}, the network takes {obs_dim} numbers."
        )
    finite = np.isfinite(calibration.astype(np.float64)).reshape(len(calibration), -1).all(axis=1)
    if not finite.all():
        raise ExportError(
            f"{int((~finite).sum())} of {len(calibration)} calibration observations are not finite (NaN or inf): "
            "remove them (e.g. obs[np.isfinite(obs).all(axis=1)]) or fix the env that produced them."
        )


def agreement(
    reference: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray], network: DeviceNetwork
) -> float:
    """
    :param reference: ``(actions, scores)`` of the float student
    :param candidate: ``(actions, scores)`` of the quantized one
    :param network: gives the action bounds
    :return: the fraction of observations with the same greedy action (discrete), or with every action dimension
        within 5% of its range (continuous; 0.05 where the range is unbounded)
    """
    expected, got = reference[0], candidate[0]
    if network.discrete:
        return float(np.mean(expected.reshape(-1) == got.reshape(-1)))
    span = np.where(np.isfinite(network.high - network.low), network.high - network.low, 1.0)
    return float(np.mean(np.all(np.abs(expected - got) <= 0.05 * span, axis=-1)))
