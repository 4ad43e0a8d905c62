"""
Quantization-aware distillation: keep distilling a trained student against its teacher while its acting network
computes with the integer grid the C export will use (fake quantization, straight-through gradients).

Post-training quantization rounds a float student once; at 4 bits the rounding error moves the greedy action on
many states (CartPole: 0.7 agreement, the return collapses). Here the student's loss is computed *through* the
rounding, so that it learns weights whose rounded values act like the teacher (QuaRL, Krishnan et al.; QPD, Avé et al.
2022). The teacher labels as usual: this is the student's own ``learn()``.

What is fake-quantized matches :mod:`sb3_distill.device.quantize`: every Linear layer's weights, symmetric per output
channel (scale = max|w[c]| / q_max, recomputed from the current weights at each step, torch's
``fake_quantize_per_channel_affine``), and its input: per tensor with torch's ``FakeQuantize`` and a moving-average
min/max observer (unsigned levels after a ReLU, symmetric otherwise), and the observation per dimension with scales
a power of two apart (:class:`InputQuantizer`). When the training ends the weights are replaced by their rounded
values, so that the export's own quantization reproduces them exactly; the export calibrates the activations again
on visited observations. Not simulated: the pre-activation rounding before a tanh / sigmoid table (ReLU students,
the default of DistillDQN, have none).
"""

from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver

from sb3_distill.device.network import acting_modules, flatten_modules
from sb3_distill.device.quantize import MAX_INPUT_SHIFT, QUANTIZATIONS
from sb3_distill.errors import ExportError
from sb3_distill.teachers.kinds import policy_kind


class InputQuantizer(th.nn.Module):
    """
    Fake quantization of the observation as the export does it: a scale per dimension, a power of two apart from the
    largest (``s_j = s_0 / 2^k_j``), from a moving average of each dimension's largest magnitude.

    :param n_inputs: observation length
    :param q_max: largest quantized magnitude
    :param momentum: weight of a new batch in the moving average
    """

    magnitude: th.Tensor

    def __init__(self, n_inputs: int, q_max: int, momentum: float = 0.01) -> None:
        super().__init__()
        self.q_max, self.momentum = q_max, momentum
        self.register_buffer("magnitude", th.zeros(n_inputs))
        self.seen = False

    def scales(self) -> th.Tensor:
        """
        :return: the scale of each dimension
        """
        magnitude = self.magnitude.clamp_min(1e-12)
        largest = magnitude.max()
        k = th.floor(th.log2(largest / magnitude)).clamp(0, MAX_INPUT_SHIFT)
        return largest / self.q_max / 2.0**k

    def forward(self, x: th.Tensor) -> th.Tensor:
        with th.no_grad():
            batch = x.detach().abs().reshape(-1, x.shape[-1]).amax(dim=0)
            if self.seen:
                self.magnitude.mul_(1 - self.momentum).add_(self.momentum * batch)
            else:
                self.magnitude.copy_(batch)
                self.seen = True
        zero = th.zeros(x.shape[-1], dtype=th.int32, device=x.device)
        return th.fake_quantize_per_channel_affine(x, self.scales().to(x.dtype), zero, x.dim() - 1, -self.q_max, self.q_max)


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
        self.input_quantizer: th.nn.Module
        if position == "first":
            self.input_quantizer = InputQuantizer(linear.in_features, self.q_max)
        elif position == "after_relu":
            self.input_quantizer = FakeQuantize(
                observer=MovingAverageMinMaxObserver,
                quant_min=0,
                quant_max=2 * self.q_max + 1,
                dtype=th.quint8,
                qscheme=th.per_tensor_affine,
            )
        else:
            self.input_quantizer = FakeQuantize(
                observer=MovingAverageMinMaxObserver,
                quant_min=-self.q_max,
                quant_max=self.q_max,
                dtype=th.qint8,
                qscheme=th.per_tensor_symmetric,
            )

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
    model: BaseAlgorithm, total_timesteps: int, quantization: str = "int4", **learn_kwargs: Any
) -> BaseAlgorithm:
    """
    Continue distilling ``model`` for ``total_timesteps`` with its acting network fake-quantized to ``quantization``;
    its weights end on the integer grid (export it with ``quantize=`` the same quantization).

    :param model: a trained student (``DistillDQN``, ``PolicyDistill``, ``DistillPPO``) with its teacher(s)
    :param total_timesteps: further steps of its ``learn()``
    :param quantization: ``"int8"`` or ``"int4"``
    :param learn_kwargs: other arguments of ``learn()`` (``reset_num_timesteps`` is False unless given)
    :return: the model (trained in place)
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"Unknown quantization {quantization!r}: use one of {', '.join(QUANTIZATIONS)}.")
    if not getattr(model, "teachers", None):
        raise ExportError(f"{type(model).__name__} has no teacher: quantization-aware distillation needs a student.")
    # The acting network's layers, replaced where the policy holds them (not in the target network or the critic).
    if _replace_linears(model.policy, QUANTIZATIONS[quantization], _positions(model)) == 0:
        raise ExportError("The student's acting network has no Linear layer to quantize.")
    learn_kwargs.setdefault("reset_num_timesteps", False)
    try:
        model.learn(total_timesteps, **learn_kwargs)
    finally:
        _bake(model.policy)
    return model
