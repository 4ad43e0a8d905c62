"""
Quantization-aware distillation: keep distilling a trained student against its teacher while its acting network
computes with the integer grid the C export will use (fake quantization, straight-through gradients).

Post-training quantization rounds a float student once; at 4 bits the rounding error moves the greedy action on
many states (CartPole: 0.7 agreement, the return collapses). Here the student's loss is computed *through* the
rounding, so that it learns weights whose rounded values act like the teacher (QuaRL, Krishnan et al.; QPD, Avé et al.
2022). The teacher labels as usual: this is the student's own ``learn()``.

What is fake-quantized matches :mod:`sb3_distill.device.quantize`: every Linear layer's weights, symmetric per output
channel (scale = max|w[c]| / q_max, recomputed from the current weights at each step, torch's
``fake_quantize_per_channel_affine``), and its input with the export's calibration rule (:class:`ActivationQuantizer`:
the error-minimizing clipping bound, unsigned levels after a ReLU, the observation per dimension). When the training
ends the weights are replaced by their rounded values, so that the export's own quantization reproduces them exactly,
and the activation bounds it trained with are kept in ``model.device_quantization`` (saved with the model), which the
export uses instead of calibrating again. Not simulated: the pre-activation rounding before a tanh / sigmoid table
(ReLU students,
the default of DistillDQN, have none).
"""

from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_distill.device.network import acting_modules, flatten_modules
from sb3_distill.device.quantize import MAX_INPUT_SHIFT, QUANTIZATIONS
from sb3_distill.errors import ExportError
from sb3_distill.teachers.kinds import policy_kind


def clipping_bounds(values: th.Tensor, levels: int, candidates: int = 50) -> th.Tensor:
    """
    :func:`sb3_distill.device.quantize.clipping_magnitude` in torch, per column: the clipping bound of each column
    of ``values`` that minimizes its quantization error (mean squared) with ``levels`` levels on each side.

    :param values: shape (batch, n)
    :param levels: largest quantized magnitude (q_max; 2 q_max + 1 for unsigned ReLU outputs)
    :param candidates: bounds tried, evenly from 1/candidates of the largest value to the largest
    :return: shape (n,)
    """
    flat = values.detach().abs()
    largest = flat.amax(dim=0).clamp_min(1e-12)
    bounds = largest[None, :] * th.arange(1, candidates + 1, device=values.device, dtype=values.dtype)[:, None] / candidates
    scales = bounds / levels  # (candidates, n)
    rounded = th.clamp(th.round(flat[None] / scales[:, None]), max=levels) * scales[:, None]
    errors = ((rounded - flat[None]) ** 2).mean(dim=1)  # (candidates, n)
    return bounds.gather(0, errors.argmin(dim=0, keepdim=True))[0]


class ActivationQuantizer(th.nn.Module):
    """
    Fake quantization of a layer's input as the export calibrates it: a clipping bound that minimizes the quantization
    error (a moving average over training batches of each batch's best bound), symmetric levels, or unsigned ones after
    a ReLU; for the observation a bound per dimension, the scales a power of two apart (``s_j = s_0 / 2^k_j``).

    torch's ``FakeQuantize`` modules calibrate with min/max observers, which the export does not use (the largest
    value wastes most of 3–4-bit levels on outliers), so the observer is this module; the rounding is torch's
    ``fake_quantize_per_channel_affine`` (its gradient is the straight-through estimator).

    :param n_inputs: input length
    :param q_max: largest quantized magnitude of a signed value
    :param position: ``"first"`` (the observation), ``"after_relu"`` or ``"other"``
    :param momentum: weight of a new batch in the moving average
    """

    bound: th.Tensor

    def __init__(self, n_inputs: int, q_max: int, position: str, momentum: float = 0.05) -> None:
        super().__init__()
        self.q_max, self.position, self.momentum = q_max, position, momentum
        self.levels = 2 * q_max + 1 if position == "after_relu" else q_max
        self.register_buffer("bound", th.zeros(n_inputs if position == "first" else 1))
        self.seen = False

    def scales(self) -> th.Tensor:
        """
        :return: the scale of each input (one value for a hidden layer, broadcast)
        """
        bound = self.bound.clamp_min(1e-12)
        if self.position != "first":
            return bound / self.levels
        largest = bound.max()
        k = th.floor(th.log2(largest / bound)).clamp(0, MAX_INPUT_SHIFT)
        return largest / self.q_max / 2.0**k

    def forward(self, x: th.Tensor) -> th.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if self.training or not self.seen:
            with th.no_grad():
                batch = clipping_bounds(flat if self.position == "first" else flat.reshape(-1, 1), self.levels)
                if self.seen:
                    self.bound.mul_(1 - self.momentum).add_(self.momentum * batch)
                else:
                    self.bound.copy_(batch)
                    self.seen = True
        scales = self.scales().to(x.dtype).expand(x.shape[-1]).contiguous()
        zero = th.zeros(x.shape[-1], dtype=th.int32, device=x.device)
        low = 0 if self.position == "after_relu" else -self.q_max
        return th.fake_quantize_per_channel_affine(x, scales, zero, x.dim() - 1, low, self.levels)


class FakeQuantizedLinear(th.nn.Module):
    """
    A Linear layer that computes with quantized weights and inputs (straight-through gradients to the float ones).

    :param linear: the layer (its parameters are shared, so that the optimizer keeps training them)
    :param bits: bits of weights and inputs
    :param position: ``"first"`` (the observation: a scale per dimension), ``"after_relu"`` (unsigned levels, as
        the export stores ReLU outputs) or ``"other"`` (symmetric levels)
    """

    def __init__(self, linear: th.nn.Linear, bits: int, position: str = "other") -> None:
        super().__init__()
        self.linear = linear
        self.q_max = 2 ** (bits - 1) - 1
        self.input_quantizer = ActivationQuantizer(linear.in_features, self.q_max, position)

    def quantized_weight(self) -> th.Tensor:
        """
        :return: the weights rounded to the grid (per output channel), differentiable straight through
        """
        weight = self.linear.weight
        scale = (weight.detach().abs().amax(dim=1) / self.q_max).clamp_min(1e-12)
        zero = th.zeros(weight.shape[0], dtype=th.int32, device=weight.device)
        return th.fake_quantize_per_channel_affine(weight, scale, zero, 0, -self.q_max, self.q_max)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return th.nn.functional.linear(self.input_quantizer(x), self.quantized_weight(), self.linear.bias)

    def baked(self) -> th.nn.Linear:
        """
        :return: the original Linear, its weights set to their rounded values
        """
        with th.no_grad():
            self.linear.weight.copy_(self.quantized_weight())
        return self.linear


def _positions(model: BaseAlgorithm) -> dict[int, str]:
    """Each Linear of the acting network (by id) and what its input is: the observation, ReLU outputs, other."""
    kind = policy_kind(model.policy)
    modules = [leaf for module in acting_modules(kind) for leaf in flatten_modules(module)]
    positions: dict[int, str] = {}
    after: list[type] = []  # the modules since the last Linear
    for module in modules:
        if isinstance(module, th.nn.Linear):
            positions[id(module)] = "first" if not positions else ("after_relu" if after == [th.nn.ReLU] else "other")
            after = []
        elif positions and not isinstance(module, (th.nn.Identity, th.nn.Flatten)):
            after.append(type(module))
    return positions


def _replace_linears(module: th.nn.Module, bits: int, positions: dict[int, str]) -> int:
    count = 0
    for name, child in module.named_children():
        if isinstance(child, th.nn.Linear) and id(child) in positions:
            setattr(module, name, FakeQuantizedLinear(child, bits, positions[id(child)]))
            count += 1
        else:
            count += _replace_linears(child, bits, positions)
    return count


def _bake(module: th.nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, FakeQuantizedLinear):
            setattr(module, name, child.baked())
        else:
            _bake(child)


def quantization_aware_distill(
    model: BaseAlgorithm,
    total_timesteps: int,
    quantization: str = "int4",
    learning_rate: float | None = None,
    **learn_kwargs: Any,
) -> BaseAlgorithm:
    """
    Continue distilling ``model`` for ``total_timesteps`` with its acting network fake-quantized to ``quantization``;
    its weights end on the integer grid, and the clipping bounds of its activations are kept in
    ``model.device_quantization`` (saved with it), which the export uses: export it with ``quantize=`` the same
    quantization.

    :param model: a trained student (``DistillDQN``, ``PolicyDistill``, ``DistillPPO``) with its teacher(s)
    :param total_timesteps: further steps of its ``learn()``
    :param quantization: ``"int8"``, ``"int4"``, ``"int3"`` or ``"int2"``
    :param learning_rate: a constant learning rate for these steps (default: the model's own schedule); a fine-tuning
        rate, e.g. a tenth of the training one, keeps the trained student from drifting while it adapts to the grid
    :param learn_kwargs: other arguments of ``learn()`` (``reset_num_timesteps`` is False unless given)
    :return: the model (trained in place)
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"Unknown quantization {quantization!r}: use one of {', '.join(QUANTIZATIONS)}.")
    if not getattr(model, "teachers", None):
        raise ExportError(f"{type(model).__name__} has no teacher: quantization-aware distillation needs a student.")
    # The acting network's layers, replaced where the policy holds them (not in the target network or the critic).
    positions = _positions(model)
    if _replace_linears(model.policy, QUANTIZATIONS[quantization], positions) == 0:
        raise ExportError("The student's acting network has no Linear layer to quantize.")
    learn_kwargs.setdefault("reset_num_timesteps", False)
    if learning_rate is not None:
        model.learning_rate = learning_rate
        model._setup_lr_schedule()
    try:
        model.learn(total_timesteps, **learn_kwargs)
        # The clipping bounds it trained with, in the order of the layers: the export uses them (saved with the model).
        layers = {id(module.linear): module for module in model.policy.modules() if isinstance(module, FakeQuantizedLinear)}
        bounds = [layers[key].input_quantizer.bound.tolist() for key in positions if key in layers]
        model.device_quantization = {"quantization": quantization, "bounds": bounds}  # type: ignore[attr-defined]
    finally:
        _bake(model.policy)
    return model
