"""
A policy's acting network as plain arrays: observation normalization, dense layers, elementwise activations, a head.

:func:`device_network` reads it from any MLP policy that :mod:`sb3_distill.export` handles (DQN / QR-DQN / DistillDQN
Q-networks, PPO / A2C / TRPO / PolicyDistill / DistillPPO actors, SAC / TQC / CrossQ / TD3 / DDPG actors, ARS) and
checks it against the policy itself, so that the C generator and the quantizer only ever see numbers.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.torch_layers import BatchRenorm1d
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import FlattenExtractor

from sb3_distill.errors import ExportError
from sb3_distill.teachers.kinds import (
    ActorCriticKind,
    ARSKind,
    DeterministicActorKind,
    GaussianActorKind,
    PolicyKind,
    QuantileKind,
    QValueKind,
)


#: Elementwise activations the generated code implements (torch module → name; parameters are read off the module)
ACTIVATIONS: dict[type[th.nn.Module], str] = {
    th.nn.ReLU: "relu",
    th.nn.Tanh: "tanh",
    th.nn.Sigmoid: "sigmoid",
    th.nn.ELU: "elu",
    th.nn.LeakyReLU: "leaky_relu",
    th.nn.Hardtanh: "hardtanh",
}


@dataclass
class Activation:
    """
    An elementwise function.

    :param name: one of the values of :data:`ACTIVATIONS`
    :param parameters: its constants (ELU's alpha, LeakyReLU's slope, Hardtanh's bounds)
    """

    name: str
    parameters: tuple[float, ...] = ()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """
        :param x: any array
        :return: the function applied elementwise (float64)
        """
        x = np.asarray(x, dtype=np.float64)
        if self.name == "relu":
            return np.maximum(x, 0.0)
        if self.name == "tanh":
            return np.tanh(x)
        if self.name == "sigmoid":
            return 1.0 / (1.0 + np.exp(-x))
        if self.name == "elu":
            return np.where(x > 0, x, self.parameters[0] * np.expm1(np.minimum(x, 0.0)))
        if self.name == "leaky_relu":
            return np.where(x > 0, x, self.parameters[0] * x)
        if self.name == "hardtanh":
            return np.clip(x, self.parameters[0], self.parameters[1])
        raise ExportError(f"Unknown activation {self.name!r}.")


@dataclass
class Dense:
    """
    ``activations(weight @ x + bias)``.

    :param weight: shape (out, in)
    :param bias: shape (out,)
    :param activations: applied in order after the affine map (often one, none for an output layer)
    """

    weight: np.ndarray
    bias: np.ndarray
    activations: list[Activation] = field(default_factory=list)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """
        :param x: a batch, shape (batch, in)
        :return: shape (batch, out), float64
        """
        y = x @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)
        for activation in self.activations:
            y = activation(y)
        return y


@dataclass
class DeviceNetwork:
    """
    Raw observation → normalized observation → dense layers (→ scores) → action.

    :param obs_mean: mean subtracted from the flattened raw observation (zeros without VecNormalize)
    :param obs_std: divisor of the centered observation (ones without VecNormalize)
    :param clip_obs: bound of the normalized observation (``inf``: none)
    :param layers: the dense layers; the last one's output is the scores
    :param discrete: greedy action = argmax of the scores; else a continuous action computed from them
    :param squash: continuous: apply tanh to the scores first (tanh-squashed Gaussian actor-critics)
    :param unscale: continuous: map [-1, 1] to the action bounds (squashing policies); else clip to the bounds
    :param low: continuous: lower action bounds
    :param high: continuous: upper action bounds
    :param score_name: what the scores are (``q_values``, ``logits``, ``mean``, ``policy_action``)
    :param description: the agent, for comments in generated code
    """

    obs_mean: np.ndarray
    obs_std: np.ndarray
    clip_obs: float
    layers: list[Dense]
    discrete: bool
    squash: bool = False
    unscale: bool = False
    low: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    high: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    score_name: str = "scores"
    description: str = ""

    @property
    def obs_dim(self) -> int:
        """Length of the flattened observation."""
        return int(self.layers[0].weight.shape[1])

    @property
    def n_scores(self) -> int:
        """Length of the score vector (number of actions, or the action dimension)."""
        return int(self.layers[-1].weight.shape[0])

    @property
    def n_parameters(self) -> int:
        """Weights and biases of the dense layers."""
        return sum(layer.weight.size + layer.bias.size for layer in self.layers)

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """
        :param obs: raw observations, shape ``(batch, *obs_shape)``
        :return: what the first layer receives, float32, shape (batch, obs_dim)
        """
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        normalized = (flat - self.obs_mean.astype(np.float32)) / self.obs_std.astype(np.float32)
        return np.clip(normalized, -self.clip_obs, self.clip_obs).astype(np.float32)

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """
        :param obs: raw observations, shape ``(batch, *obs_shape)``
        :return: the last layer's output, float64
        """
        x: np.ndarray = self.normalize(obs).astype(np.float64)
        for layer in self.layers:
            x = layer(x)
        return x

    def actions_from_scores(self, scores: np.ndarray) -> np.ndarray:
        """
        :param scores: shape (batch, n_scores)
        :return: greedy actions (int64, shape (batch,)) or continuous actions (float32, shape (batch, action_dim))
        """
        if self.discrete:
            return np.argmax(scores, axis=1).astype(np.int64)
        actions = np.tanh(scores) if self.squash else np.asarray(scores, dtype=np.float64)
        if self.unscale:
            actions = self.low + 0.5 * (actions + 1.0) * (self.high - self.low)
        else:
            actions = np.clip(actions, self.low, self.high)
        return actions.astype(np.float32)

    def __call__(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        :param obs: raw observations, shape ``(batch, *obs_shape)``
        :return: ``(actions, scores)`` as the exported files give them
        """
        scores = self.scores(obs)
        return self.actions_from_scores(scores), scores.astype(np.float32)


def _onnx_hint(what: str) -> ExportError:
    return ExportError(
        f"The C export handles MLP policies on flat Box observations; {what}. Export it with --format onnx "
        "(or torchscript) instead."
    )


def _numpy(tensor: th.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def flatten_modules(module: th.nn.Module) -> list[th.nn.Module]:
    """
    :param module: a module
    :return: the leaves of its ``Sequential`` / ``ModuleList`` nesting, in order
    """
    if isinstance(module, (th.nn.Sequential, th.nn.ModuleList)):
        return [leaf for child in module for leaf in flatten_modules(child)]
    return [module]


def _activation(module: th.nn.Module) -> Activation:
    name = ACTIVATIONS[type(module)]
    parameters: tuple[float, ...] = ()
    if isinstance(module, th.nn.ELU):
        parameters = (float(module.alpha),)
    elif isinstance(module, th.nn.LeakyReLU):
        parameters = (float(module.negative_slope),)
    elif isinstance(module, th.nn.Hardtanh):
        parameters = (float(module.min_val), float(module.max_val))
    return Activation(name, parameters)


def _affine_of(norm: Any) -> tuple[np.ndarray, np.ndarray]:
    """Scale and shift of a batch-(re)normalization layer in eval mode: ``x * scale + shift``."""
    if isinstance(norm, BatchRenorm1d):
        mean, var, weight, bias = norm.ra_mean, norm.ra_var, norm.scale, norm.bias
    else:
        mean, var, weight, bias = norm.running_mean, norm.running_var, norm.weight, norm.bias
    assert isinstance(mean, th.Tensor) and isinstance(var, th.Tensor)
    scale = 1.0 / np.sqrt(_numpy(var).astype(np.float64) + float(norm.eps))
    shift = -_numpy(mean).astype(np.float64) * scale
    if norm.affine and weight is not None:
        gain, offset = _numpy(weight).astype(np.float64), _numpy(bias).astype(np.float64)
        scale, shift = scale * gain, shift * gain + offset
    return scale, shift


def dense_layers(*modules: th.nn.Module) -> list[Dense]:
    """
    The dense layers of a chain of torch modules (Linear, the activations of :data:`ACTIVATIONS`, Flatten / Identity,
    eval-mode batch normalization in front of a Linear, which is folded into it).

    :param modules: the modules, applied in order
    :return: the layers
    :raises ~sb3_distill.errors.ExportError: for any other module
    """
    layers: list[Dense] = []
    pending: tuple[np.ndarray, np.ndarray] | None = None  # a normalization waiting for the next Linear
    for module in [leaf for item in modules for leaf in flatten_modules(item)]:
        if isinstance(module, th.nn.Linear):
            weight = _numpy(module.weight).astype(np.float64)
            bias = _numpy(module.bias).astype(np.float64) if module.bias is not None else np.zeros(weight.shape[0])
            if pending is not None:
                scale, shift = pending
                weight, bias = weight * scale[None, :], bias + weight @ shift
                pending = None
            layers.append(Dense(weight.astype(np.float32), bias.astype(np.float32)))
        elif type(module) in ACTIVATIONS:
            if not layers or pending is not None:
                raise _onnx_hint(f"an activation before the first Linear layer ({module}) is not supported")
            layers[-1].activations.append(_activation(module))
        elif isinstance(module, (th.nn.BatchNorm1d, BatchRenorm1d)):
            if pending is not None:
                raise _onnx_hint("two normalization layers in a row are not supported")
            pending = _affine_of(module)
        elif isinstance(module, (th.nn.Flatten, th.nn.Identity, FlattenExtractor)):
            continue
        else:
            raise _onnx_hint(f"its network has a {type(module).__name__} layer")
    if pending is not None or not layers:
        raise _onnx_hint("its network does not end with a Linear layer")
    return layers


def acting_modules(kind: PolicyKind) -> list[th.nn.Module]:
    """
    :param kind: a policy's kind
    :return: the modules it acts with, in order: features extractor, then layers (SAC's tanh squashing included)
    """
    policy: Any = kind.policy
    if isinstance(kind, QValueKind):
        net = policy.quantile_net if isinstance(kind, QuantileKind) else policy.q_net
        return [net.features_extractor, net.quantile_net if isinstance(kind, QuantileKind) else net.q_net]
    if isinstance(kind, ActorCriticKind):
        assert isinstance(policy, ActorCriticPolicy)
        return [policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net]
    if isinstance(kind, DeterministicActorKind):
        return [policy.actor.features_extractor, policy.actor.mu]
    if isinstance(kind, GaussianActorKind):
        # The deterministic action of a squashed Gaussian actor (SAC, TQC, CrossQ) is tanh of its mean.
        return [policy.actor.features_extractor, policy.actor.latent_pi, policy.actor.mu, th.nn.Tanh()]
    if isinstance(kind, ARSKind):
        return [policy.features_extractor, policy.action_net]
    raise _onnx_hint(f"policies of kind {kind.name!r} are not supported")


def check_observation_space(space: spaces.Space) -> None:
    """
    :param space: an agent's observation space
    :raises ~sb3_distill.errors.ExportError: naming ONNX, unless it is a flat (non-image) Box
    """
    if isinstance(space, spaces.Dict):
        raise ExportError(
            f"The C export handles MLP policies on flat Box observations; this agent observes {space}. Dict "
            "observations need a network per key (MultiInputPolicy): use --format onnx for a CNN or MLP on one Box, or "
            "train on flattened observations (gymnasium.wrappers.FlattenObservation) to export C."
        )
    if not isinstance(space, spaces.Box):
        raise _onnx_hint(f"this agent observes {space}")
    if is_image_space(space, check_channels=False, normalized_image=False) and len(space.shape) == 3:
        raise _onnx_hint(f"this agent observes images {space} (a CNN policy)")


def device_network(
    policy: BasePolicy,
    kind: PolicyKind,
    obs_mean: np.ndarray,
    obs_std: np.ndarray,
    clip_obs: float,
    check_obs: np.ndarray | None = None,
) -> DeviceNetwork:
    """
    The acting network of an MLP policy as arrays.

    :param policy: the policy (CPU, eval mode)
    :param kind: its kind (:func:`sb3_distill.teachers.kinds.policy_kind`)
    :param obs_mean: observation normalization: mean (shape of the observation)
    :param obs_std: observation normalization: sqrt(var + ε)
    :param clip_obs: observation normalization: bound (``inf``: none)
    :param check_obs: raw observations on which the arrays must give the policy's own scores (default: none)
    :return: the network
    :raises ~sb3_distill.errors.ExportError: naming ONNX, for CNN / dict / image observations and layers the C code
        does not have
    """
    check_observation_space(policy.observation_space)
    first = acting_modules(kind)[0]
    if not isinstance(first, FlattenExtractor):
        raise _onnx_hint(f"its features extractor is a {type(first).__name__} (only FlattenExtractor, i.e. MLP policies)")
    layers = dense_layers(*acting_modules(kind)[1:])
    if isinstance(kind, QuantileKind):
        # Q-values are the mean over quantiles of an output viewed as (n_quantiles, n_actions): one linear map.
        last = layers[-1]
        n_actions = int(policy.action_space.n)  # type: ignore[attr-defined]
        weight = last.weight.astype(np.float64).reshape(-1, n_actions, last.weight.shape[1]).mean(axis=0)
        bias = last.bias.astype(np.float64).reshape(-1, n_actions).mean(axis=0)
        layers[-1] = Dense(weight.astype(np.float32), bias.astype(np.float32), last.activations)
    discrete = isinstance(policy.action_space, spaces.Discrete)
    action_space = policy.action_space
    low = high = np.zeros(0, dtype=np.float32)
    if isinstance(action_space, spaces.Box):
        low, high = action_space.low.astype(np.float32).reshape(-1), action_space.high.astype(np.float32).reshape(-1)
    elif not discrete:
        raise _onnx_hint(f"its action space is {action_space} (C: Discrete or Box)")
    network = DeviceNetwork(
        obs_mean=np.asarray(obs_mean, dtype=np.float32).reshape(-1),
        obs_std=np.asarray(obs_std, dtype=np.float32).reshape(-1),
        clip_obs=float(clip_obs),
        layers=layers,
        discrete=discrete,
        squash=not discrete and isinstance(kind, ActorCriticKind) and bool(policy.squash_output),
        unscale=not discrete and bool(policy.squash_output),
        low=low,
        high=high,
        score_name=kind.score_name,
        description=f"{type(policy).__name__} ({kind.description})",
    )
    if check_obs is not None:
        _check_against_policy(network, kind, check_obs)
    return network


def _check_against_policy(network: DeviceNetwork, kind: PolicyKind, obs: np.ndarray) -> None:
    with th.no_grad():
        expected = kind.action_scores(th.as_tensor(network.normalize(obs)).reshape(len(obs), *obs.shape[1:])).numpy()
    got = network.scores(obs)
    error = float(np.max(np.abs(got - expected))) if len(obs) else 0.0
    if not np.isfinite(error) or error > 1e-3 * (1.0 + float(np.max(np.abs(expected)))):
        raise _onnx_hint(f"its network's output could not be reproduced layer by layer (max difference {error:.3g})")
