"""
C99 source of a :class:`~sb3_distill.device.network.DeviceNetwork` (float) or a
:class:`~sb3_distill.device.quantize.QuantizedNetwork` (integer): a header ``NAME.h`` and a source ``NAME.c``.

No heap, no globals that change (the working buffers are on the stack, so the entry point is re-entrant), nothing but
``<stdint.h>`` and, where an activation needs it, ``<math.h>``; every symbol starts with the prefix, so that several
policies link into one firmware. Entry points::

    int32_t NAME_act(const float obs[NAME_OBS_DIM], float scores[NAME_N_SCORES]);                     // Discrete
    void NAME_act(const float obs[NAME_OBS_DIM], float action[NAME_ACTION_DIM], float scores[NAME_N_SCORES]);  // Box

``scores`` may be ``NULL``. The observation is the raw one (flattened); its normalization is inside.
"""

import re

import numpy as np

from sb3_distill.device.network import Activation, DeviceNetwork
from sb3_distill.device.quantize import QuantizedNetwork, input_inverse_scale, pack_weights, packed_field_bits

#: First line of every generated header: the loader reads the prefix and the quantization from it
MARKER = "/* sb3-distill C export:"
#: Math functions each activation's float code needs (else nothing from <math.h>)
NEEDS_MATH = {"tanh", "sigmoid", "elu"}


def c_identifier(stem: str) -> str:
    """
    :param stem: a file name without suffix
    :return: a valid C identifier made of it (the prefix of every symbol)
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    return name if re.match(r"[A-Za-z_]", name) else f"policy_{name}"


def _float(value: float) -> str:
    text = f"{float(np.float32(value)):.9g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    return text + "f"


def _array(values: np.ndarray, formatter: type | None = None) -> str:
    values = np.asarray(values)
    if values.ndim > 1:
        return "{" + ",\n    ".join(_array(row, formatter) for row in values) + "}"
    items = [_float(v) if formatter is None else str(int(v)) for v in values]
    lines = [", ".join(items[i : i + 12]) for i in range(0, len(items), 12)]
    return "{" + ",\n     ".join(lines) + "}"


def _declare(c_type: str, name: str, values: np.ndarray, integer: bool = False) -> str:
    dims = "".join(f"[{n}]" for n in np.asarray(values).shape)
    return f"static const {c_type} {name}{dims} = {_array(values, int if integer else None)};\n"


def _activation_expression(activation: Activation, x: str) -> str:
    p = activation.parameters
    if activation.name == "relu":
        return f"({x} > 0.0f ? {x} : 0.0f)"
    if activation.name == "tanh":
        return f"tanhf({x})"
    if activation.name == "sigmoid":
        return f"(1.0f / (1.0f + expf(-{x})))"
    if activation.name == "elu":
        return f"({x} > 0.0f ? {x} : {_float(p[0])} * expm1f({x}))"
    if activation.name == "leaky_relu":
        return f"({x} > 0.0f ? {x} : {_float(p[0])} * {x})"
    if activation.name == "hardtanh":
        return f"({x} < {_float(p[0])} ? {_float(p[0])} : ({x} > {_float(p[1])} ? {_float(p[1])} : {x}))"
    raise ValueError(activation.name)


def _header(prefix: str, network: DeviceNetwork, quantization: str, description: str) -> str:
    upper = prefix.upper()
    guard = f"{upper}_H_"
    action_dim = 1 if network.discrete else network.n_scores
    if network.discrete:
        signature = f"int32_t {prefix}_act(const float obs[{upper}_OBS_DIM], float scores[{upper}_N_SCORES])"
        doc = f"greedy action in [0, {network.n_scores}); scores ({network.score_name}) may be NULL"
    else:
        signature = (
            f"void {prefix}_act(const float obs[{upper}_OBS_DIM], float action[{upper}_ACTION_DIM], "
            f"float scores[{upper}_N_SCORES])"
        )
        doc = f"deterministic action in the env's bounds; scores ({network.score_name}) may be NULL"
    return f"""{MARKER} prefix={prefix} quantization={quantization} */
/* {description}. Generated: do not edit. */
#ifndef {guard}
#define {guard}

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {upper}_OBS_DIM {network.obs_dim}
#define {upper}_N_SCORES {network.n_scores}
#define {upper}_ACTION_DIM {action_dim}
#define {upper}_DISCRETE {int(network.discrete)}

/* obs: the raw observation, flattened (its normalization is inside); {doc} */
{signature};

#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"""


def _normalization(prefix: str, network: DeviceNetwork) -> tuple[str, str]:
    """Constants and code that make ``x[i]`` (float) the normalized observation."""
    normalized = bool(np.any(network.obs_mean != 0) or np.any(network.obs_std != 1) or np.isfinite(network.clip_obs))
    if not normalized:
        return "", "        float x = obs[i];\n"
    constants = _declare("float", f"{prefix}_obs_mean", network.obs_mean) + _declare(
        "float", f"{prefix}_obs_std", network.obs_std
    )
    code = f"        float x = (obs[i] - {prefix}_obs_mean[i]) / {prefix}_obs_std[i];\n"
    if np.isfinite(network.clip_obs):
        clip = _float(network.clip_obs)
        code += f"        x = x < -{clip} ? -{clip} : (x > {clip} ? {clip} : x);\n"
    return constants, code


def _head(prefix: str, network: DeviceNetwork, value: str) -> tuple[str, str]:
    """Constants and the end of the entry point, given an expression ``value`` of score ``i`` (a float)."""
    upper = prefix.upper()
    if network.discrete:
        return "", (
            f"    best = 0;\n"
            f"    for (i = 0; i < {upper}_N_SCORES; ++i) {{\n"
            f"        if (scores != 0) scores[i] = {value};\n"
            f"        if (out[i] > out[best]) best = i;\n"
            f"    }}\n"
            f"    return (int32_t)best;\n"
        )
    constants = _declare("float", f"{prefix}_action_low", network.low) + _declare(
        "float", f"{prefix}_action_high", network.high
    )
    y = "tanhf(y)" if network.squash else "y"
    if network.unscale:
        bound = f"{prefix}_action_low[i] + 0.5f * (a + 1.0f) * ({prefix}_action_high[i] - {prefix}_action_low[i])"
    else:
        bound = (
            f"a < {prefix}_action_low[i] ? {prefix}_action_low[i] : "
            f"(a > {prefix}_action_high[i] ? {prefix}_action_high[i] : a)"
        )
    return constants, (
        f"    for (i = 0; i < {upper}_N_SCORES; ++i) {{\n"
        f"        float y = {value};\n"
        f"        float a = {y};\n"
        f"        if (scores != 0) scores[i] = y;\n"
        f"        action[i] = {bound};\n"
        f"    }}\n"
    )


def _signature(prefix: str, network: DeviceNetwork) -> str:
    upper = prefix.upper()
    if network.discrete:
        return f"int32_t {prefix}_act(const float obs[{upper}_OBS_DIM], float scores[{upper}_N_SCORES])"
    return (
        f"void {prefix}_act(const float obs[{upper}_OBS_DIM], float action[{upper}_ACTION_DIM], "
        f"float scores[{upper}_N_SCORES])"
    )


def float_source(prefix: str, network: DeviceNetwork, description: str) -> tuple[str, str]:
    """
    :param prefix: symbol prefix (a C identifier)
    :param network: the float network
    :param description: one line for the comment at the top
    :return: the header and the source
    """
    upper = prefix.upper()
    width = max([network.obs_dim] + [layer.weight.shape[0] for layer in network.layers])
    uses_math = network.squash or any(a.name in NEEDS_MATH for layer in network.layers for a in layer.activations)
    constants, normalize = _normalization(prefix, network)
    for index, layer in enumerate(network.layers):
        constants += _declare("float", f"{prefix}_w{index}", layer.weight)
        constants += _declare("float", f"{prefix}_b{index}", layer.bias)
    body = [f"    float a[{width}], b[{width}];\n", "    float *x_in = a, *x_out = b, *swap;\n    const float *out;\n"]
    body.append("    int i, j;\n" if not network.discrete else "    int i, j, best;\n")
    body.append(f"    for (i = 0; i < {upper}_OBS_DIM; ++i) {{\n{normalize}        a[i] = x;\n    }}\n")
    for index, layer in enumerate(network.layers):
        n_out, n_in = layer.weight.shape
        names = ", ".join(a.name for a in layer.activations) or "linear"
        body.append(f"    /* layer {index}: {n_in} -> {n_out}, {names} */\n")
        body.append(f"    for (i = 0; i < {n_out}; ++i) {{\n        float s = {prefix}_b{index}[i];\n")
        body.append(f"        for (j = 0; j < {n_in}; ++j) s += {prefix}_w{index}[i][j] * x_in[j];\n")
        for activation in layer.activations:
            body.append(f"        s = {_activation_expression(activation, 's')};\n")
        body.append("        x_out[i] = s;\n    }\n    swap = x_in; x_in = x_out; x_out = swap;\n")
    head_constants, head = _head(prefix, network, "out[i]")
    constants += head_constants
    body.append("    out = x_in;\n" + head)
    source = (
        f"/* {description}: float32. Generated by sb3-distill: do not edit. */\n"
        f'#include "{prefix}.h"\n'
        + ("#include <math.h>\n" if uses_math else "")
        + "\n"
        + constants
        + f"\n{_signature(prefix, network)}\n{{\n"
        + "".join(body)
        + "}\n"
    )
    return _header(prefix, network, "float32", description), source


def _weight_loop(field: int) -> str:
    """The inner product of one output channel: int8 weights as they are, packed ones unpacked (sign-extended)."""
    if field == 8:
        return "        for (j = 0; j < layer->n_in; ++j) s += (int32_t)layer->w[i * layer->n_in + j] * x[j];\n"
    per_byte = 8 // field
    log2 = per_byte.bit_length() - 1
    mask, half = (1 << field) - 1, 1 << (field - 1)
    return (
        f"        /* {per_byte} weights per byte, {field} bits each (two's complement), lowest bits first */\n"
        "        k = (uint32_t)i * layer->n_in;\n"
        "        for (j = 0; j < layer->n_in; ++j, ++k) {\n"
        f"            int32_t v = (int32_t)((uint32_t)(layer->w[k >> {log2}] >> ((k & {per_byte - 1}u) * {field}u))"
        f" & {mask}u);\n"
        f"            s += ((v ^ {half}) - {half}) * x[j];\n"
        "        }\n"
    )


def integer_source(prefix: str, quantized: QuantizedNetwork, description: str) -> tuple[str, str]:
    """
    :param prefix: symbol prefix (a C identifier)
    :param quantized: the integer network
    :param description: one line for the comment at the top
    :return: the header and the source
    """
    network = quantized.network
    upper = prefix.upper()
    q_max = quantized.q_max
    constants, normalize = _normalization(prefix, network)
    constants += _declare("float", f"{prefix}_input_inverse_scale", input_inverse_scale(quantized.input_scale))
    constants += _declare("int16_t", f"{prefix}_input_factor", 2**quantized.input_shift, integer=True)
    field = packed_field_bits(quantized.bits)
    for index, layer in enumerate(quantized.layers):
        if field == 8:
            constants += _declare("int8_t", f"{prefix}_w{index}", layer.weight, integer=True)
        else:
            constants += _declare("uint8_t", f"{prefix}_w{index}", pack_weights(layer.weight, field), integer=True)
        constants += _declare("int16_t", f"{prefix}_b{index}", layer.bias >> layer.bias_shift, integer=True)
        constants += _declare("int16_t", f"{prefix}_m{index}", layer.multiplier, integer=True)
        if layer.table is not None:
            constants += _declare("int8_t", f"{prefix}_t{index}", layer.table, integer=True)
    width = max([network.obs_dim] + [layer.weight.shape[0] for layer in quantized.layers])
    body = [
        f"    int32_t a[{width}], b[{width}];\n",
        "    int32_t *x_in = a, *x_out = b, *swap;\n",
        "    const int32_t *out;\n",
        "    int i;\n" if not network.discrete else "    int i, best;\n",
        f"    for (i = 0; i < {upper}_OBS_DIM; ++i) {{\n{normalize}",
        f"        x *= {prefix}_input_inverse_scale[i];\n",
        f"        x = x < -{q_max}.0f ? -{q_max}.0f : (x > {q_max}.0f ? {q_max}.0f : x);\n",
        "        /* rounded to a level, then in the first layer's common unit (a power of two finer) */\n",
        f"        a[i] = (int32_t)(x + (x < 0.0f ? -0.5f : 0.5f)) * {prefix}_input_factor[i];\n    }}\n",
    ]
    entries = []
    for index, layer in enumerate(quantized.layers):
        n_out, n_in = layer.weight.shape
        low = "INT32_MIN" if layer.low is None else str(layer.low)
        high = "INT32_MAX" if layer.high is None else str(layer.high)
        table = f"{prefix}_t{index}" if layer.table is not None else "0"
        weights = f"&{prefix}_w{index}[0][0]" if field == 8 else f"{prefix}_w{index}"
        entries.append(
            f"    {{{weights}, {prefix}_b{index}, {prefix}_m{index}, {table}, {low}, {high}, "
            f"{n_in}, {n_out}, {int(layer.shift[0])}, {layer.bias_shift}}}"
        )
    constants += f"static const {prefix}_layer_t {prefix}_layers[{len(entries)}] = {{\n" + ",\n".join(entries) + "\n};\n"
    body.append(
        f"    for (i = 0; i < {len(entries)}; ++i) {{\n"
        f"        {prefix}_layer(&{prefix}_layers[i], x_in, x_out);\n"
        "        swap = x_in; x_in = x_out; x_out = swap;\n    }\n"
    )
    body.append("    out = x_in;\n")
    head_constants, head = _head(prefix, network, f"(float)out[i] * {_float(quantized.layers[-1].scale)}")
    constants += head_constants
    body.append(head)
    layer_type = (
        f"typedef struct {{\n    const {'int8_t' if field == 8 else 'uint8_t'} *w;\n"
        "    const int16_t *bias;\n    const int16_t *m;\n    const int8_t *table;\n"
        f"    int32_t low, high;\n    uint16_t n_in, n_out;\n    uint8_t shift, bias_shift;\n}} {prefix}_layer_t;\n\n"
    )
    rescale = (
        "/* One layer: y = clamp(((b 2^bias_shift + w x) * m) / 2^shift, rounded), then the activation's table if any.\n"
        "   m and shift: the fixed-point form of (weight scale * input scale / output scale) of each channel. */\n"
        f"static void {prefix}_layer(const {prefix}_layer_t *layer, const int32_t *x, int32_t *y)\n{{\n"
        + ("    int i, j;\n" if field == 8 else "    int i, j;\n    uint32_t k;\n")
        + "    for (i = 0; i < layer->n_out; ++i) {\n"
        "        int32_t s = (int32_t)layer->bias[i] * ((int32_t)1 << layer->bias_shift);\n"
        + _weight_loop(field)
        + "        s = (int32_t)(((int64_t)s * layer->m[i] + ((int64_t)1 << (layer->shift - 1))) >> layer->shift);\n"
        "        s = s < layer->low ? layer->low : (s > layer->high ? layer->high : s);\n"
        f"        y[i] = layer->table != 0 ? layer->table[s + {q_max}] : s;\n"
        "    }\n}\n"
    )
    uses_math = network.squash
    source = (
        f"/* {description}: {quantized.bits}-bit weights and activations, integer arithmetic. "
        "Generated by sb3-distill: do not edit. */\n"
        f'#include "{prefix}.h"\n'
        + ("#include <math.h>\n" if uses_math else "")
        + "\n"
        + layer_type
        + constants
        + "\n"
        + rescale
        + f"\n{_signature(prefix, network)}\n{{\n"
        + "".join(body)
        + "}\n"
    )
    return _header(prefix, network, f"int{quantized.bits}", description), source
