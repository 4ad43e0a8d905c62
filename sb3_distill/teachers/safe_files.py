"""
Reading teacher files from strangers without running code hidden in them.

An SB3 zip is partly a pickle (the ``:serialized:`` entries of its ``data`` JSON, written with cloudpickle), and so
are rl-zoo3's ``vecnormalize.pkl`` and, with python tags, its ``config.yml``. Unpickling runs whatever the file asks
for. This module reads them without that:

* the ``data`` JSON is parsed as JSON; only the entries a teacher needs are decoded (``policy_class``, the spaces,
  ``policy_kwargs``); every other entry (schedules, buffers, the last observation...) stays an opaque string;
* ``policy_class`` is *not* unpickled: its pickle is read opcode by opcode (:mod:`pickletools`), it must be a plain
  reference ``module.name`` to a policy class of SB3, sb3-contrib or sb3-distill (:func:`policy_classes`);
* the spaces, ``policy_kwargs`` and ``vecnormalize.pkl`` go through :class:`RestrictedUnpickler`: only the globals of
  an allow-list can be named, only a few numpy / torch constructors can be *called*, the state of an object is only
  set on instances of allowed classes (never on a class);
* weights through ``torch.load(weights_only=True)``;
* YAML through ``yaml.SafeLoader`` plus the one python tag rl-zoo3 writes (``collections.OrderedDict``, read as a
  ``dict``) and ``!!python/tuple``;
* zip members are only read by their exact names, and only up to a size limit.

Anything else ends in :class:`UntrustedFileError`, which names what the file needs and the opt-in
(``trust_remote_code=True`` / ``SB3_DISTILL_TRUST_REMOTE_CODE=1``) that loads it the way SB3 itself does.
"""

import base64
import collections
import functools
import io
import json
import os
import pickle
import pickletools
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

from sb3_distill.errors import TeacherLoadError

TRUST_ENV_VAR = "SB3_DISTILL_TRUST_REMOTE_CODE"
#: The largest ``data`` entry of a zip read (its JSON; real ones are 10-100 kB, a few MB with image observations).
MAX_DATA_BYTES = 64 * 2**20
#: The largest weights file read (``policy.pth``), and the largest member any zip may declare.
MAX_WEIGHTS_BYTES = 2 * 2**30
#: The largest ``vecnormalize.pkl`` / ``config.yml`` / ``args.yml`` read.
MAX_SIDE_FILE_BYTES = 16 * 2**20


class UntrustedFileError(TeacherLoadError):
    """A teacher file that needs more than the safe reader admits (code, an unknown class, a link outside)."""


def trust_remote_code(trust: bool | None = None) -> bool:
    """
    Whether files may be unpickled as SB3 does (running the code they name): ``trust`` if given, else
    ``$SB3_DISTILL_TRUST_REMOTE_CODE``. It also allows downloads from the Hugging Face Hub.

    :param trust: explicit choice of the caller
    :return: the decision
    """
    if trust is not None:
        return trust
    return os.environ.get(TRUST_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


def opt_in_hint() -> str:
    """:return: the sentence that ends every :class:`UntrustedFileError`"""
    return (
        f"Only if you trust the file and its author, load it as SB3 does with trust_remote_code=True, "
        f"{TRUST_ENV_VAR}=1 or sb3-distill's --trust-remote-code (unpickling can run any code)."
    )


def untrusted(source: str | os.PathLike, what: str) -> UntrustedFileError:
    """
    :param source: the file
    :param what: what it needs, e.g. ``"policy_kwargs names the global os.system"``
    :return: the error, with the opt-in
    """
    return UntrustedFileError(f"{source}: {what}; the safe loader does not admit it. {opt_in_hint()}")


# ---------------------------------------------------------------------------------------------- allow-lists
def _named(objects: Iterable[Any]) -> dict[str, Any]:
    return {f"{obj.__module__}.{obj.__qualname__}": obj for obj in objects}


def _empty_array(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` as its pickles call it: an empty ndarray, filled by ``BUILD`` from the file's bytes."""
    from numpy._core import multiarray

    if subtype is not np.ndarray or not isinstance(shape, tuple) or int(np.prod(shape)) != 0:
        raise ValueError(f"numpy's _reconstruct asked for a {getattr(subtype, '__name__', subtype)} of shape {shape!r}")
    return cast(np.ndarray, multiarray._reconstruct(subtype, shape, dtype))


@functools.cache
def _numpy_globals() -> tuple[dict[str, Any], frozenset[int]]:
    """numpy's array, dtype, scalar and random-generator reconstructors (the callables among them)."""
    from numpy._core import multiarray, numeric
    from numpy.random import _pickle as random_pickle
    from numpy.random import bit_generator

    names: dict[str, Any] = {
        "numpy._core.multiarray._reconstruct": _empty_array,
        "numpy._core.multiarray.scalar": multiarray.scalar,
        "numpy._core.numeric._frombuffer": numeric._frombuffer,  # type: ignore[attr-defined]
        "numpy.dtype": np.dtype,
        "numpy.ndarray": np.ndarray,
        "numpy.random._pickle.__randomstate_ctor": random_pickle.__randomstate_ctor,
        "numpy.random._pickle.__generator_ctor": random_pickle.__generator_ctor,
        "numpy.random._pickle.__bit_generator_ctor": random_pickle.__bit_generator_ctor,
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": bit_generator.__pyx_unpickle_SeedSequence,  # type: ignore[attr-defined]
    }
    for generator in (
        np.random.SeedSequence,
        np.random.PCG64,
        np.random.PCG64DXSM,
        np.random.MT19937,
        np.random.Philox,
        np.random.SFC64,
    ):
        names[f"{generator.__module__}.{generator.__name__}"] = generator
    # numpy < 2 wrote numpy.core.*, numpy 2 writes numpy._core.*: the same functions.
    names.update({key.replace("numpy._core.", "numpy.core."): value for key, value in list(names.items())})
    callables = {id(value) for key, value in names.items() if not key.endswith(("numpy.ndarray",))}
    return names, frozenset(callables)


@functools.cache
def _space_globals() -> dict[str, Any]:
    classes = [spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict, spaces.Tuple]
    names = _named(classes)
    names["collections.OrderedDict"] = collections.OrderedDict
    return names


@functools.cache
def _policy_kwargs_globals() -> dict[str, Any]:
    """Values ``policy_kwargs`` may hold: activation, optimizer and features-extractor classes, ``torch.device``."""
    import sb3_contrib.common.torch_layers  # noqa: F401  (its extractors register as subclasses)
    from stable_baselines3.common import torch_layers
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

    activations = [
        value
        for value in vars(th.nn.modules.activation).values()
        if isinstance(value, type)
        and issubclass(value, th.nn.Module)
        and value.__module__ == "torch.nn.modules.activation"
        and value is not th.nn.MultiheadAttention
    ]
    optimizers = [
        value
        for value in vars(th.optim).values()
        if isinstance(value, type) and issubclass(value, th.optim.Optimizer) and value is not th.optim.Optimizer
    ]
    extractors = [
        cls
        for cls in _subclasses(torch_layers.BaseFeaturesExtractor)
        if cls.__module__.startswith(("stable_baselines3.", "sb3_contrib.", "sb3_distill."))
    ]
    names = _named([*activations, *optimizers, RMSpropTFLike, *extractors, th.nn.Identity])
    names["torch.device"] = th.device
    names["collections.OrderedDict"] = collections.OrderedDict
    return names


@functools.cache
def _vec_normalize_globals() -> dict[str, Any]:
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from stable_baselines3.common.vec_env.vec_normalize import VecNormalize

    return {**_space_globals(), **_named([VecNormalize, RunningMeanStd])}


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    sub: type
    for sub in type.__subclasses__(cls):
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


@functools.cache
def policy_classes() -> dict[str, type[BasePolicy]]:
    """
    The policy classes a teacher file may name without trust: every ``BasePolicy`` subclass defined by
    stable-baselines3, sb3-contrib or sb3-distill.

    :return: ``{"module.QualName": class}``
    """
    import importlib

    for module in (
        "stable_baselines3.dqn.policies",
        "stable_baselines3.sac.policies",
        "stable_baselines3.td3.policies",
        "stable_baselines3.common.policies",
        "sb3_contrib.qrdqn.policies",
        "sb3_contrib.tqc.policies",
        "sb3_contrib.ars.policies",
        "sb3_contrib.crossq.policies",
        "sb3_contrib.common.maskable.policies",
        "sb3_contrib.common.recurrent.policies",
        "sb3_distill",
    ):
        importlib.import_module(module)
    classes = [
        cls
        for cls in _subclasses(BasePolicy)
        if cls.__module__.startswith(("stable_baselines3.", "sb3_contrib.", "sb3_distill."))
    ]
    return _named([BasePolicy, *classes])


def _legacy_name(module: str) -> str:
    """Module paths of old pickles under today's names (``gym`` → ``gymnasium``)."""
    if module == "gym" or module.startswith("gym."):
        return "gymnasium" + module[len("gym") :]
    return module


# ---------------------------------------------------------------------------------------------- the unpickler
#: Python's pure unpickler, whose opcodes a subclass can check (typeshed does not describe its internals).
_PureUnpickler: Any = pickle._Unpickler  # type: ignore[attr-defined]


class RestrictedUnpickler(_PureUnpickler):
    """
    An unpickler that admits a fixed set of globals and calls only a fixed set of them.

    Python's pure unpickler, with four opcodes checked: ``GLOBAL`` / ``STACK_GLOBAL`` (the name must be in
    ``allowed``), ``REDUCE`` / ``INST`` / ``OBJ`` (the callable must be one of ``callables``: numpy's reconstructors,
    ``torch.device``, ``OrderedDict``; classes such as ``Box`` or ``VecNormalize`` are never called with the file's
    arguments), ``NEWOBJ`` (only ``object.__new__`` of an allowed class: nothing is allocated from the file's
    arguments) and ``BUILD`` (state is only set on instances of allowed classes and numpy objects, never on a class).
    Memory stays within a small multiple of the pickle's size.

    :param data: the pickle
    :param allowed: ``{"module.name": object}`` the pickle may name
    :param callables: ids of the objects of ``allowed`` it may call
    :param source: the file, for messages
    :param what: what is read (``"observation_space"``), for messages
    """

    dispatch = dict(_PureUnpickler.dispatch)

    def __init__(self, data: bytes, allowed: dict[str, Any], callables: frozenset[int], source: str, what: str) -> None:
        super().__init__(io.BytesIO(data))
        self.allowed = allowed
        self.callables = callables
        self.source = source
        self.what = what
        self.build_types = (
            *(value for value in allowed.values() if isinstance(value, type)),
            np.ndarray,
            np.dtype,
            np.generic,
            np.random.RandomState,
            np.random.Generator,
            np.random.BitGenerator,
            np.random.SeedSequence,
        )

    def _refuse(self, what: str) -> UntrustedFileError:
        return untrusted(self.source, f"its {self.what} {what}")

    def find_class(self, module: str, name: str) -> Any:
        key = f"{_legacy_name(module)}.{name}"
        if key not in self.allowed:
            raise self._refuse(f"names the global {module}.{name}")
        return self.allowed[key]

    def _check_call(self, func: Any) -> None:
        if id(func) not in self.callables:
            raise self._refuse(
                f"calls {getattr(func, '__qualname__', type(func).__name__)} (only numpy's reconstructors may be called)"
            )

    def load_reduce(self) -> None:
        self._check_call(self.stack[-2])
        super().load_reduce()

    def _instantiate(self, klass: Any, args: Any) -> None:
        self._check_call(klass)
        super()._instantiate(klass, args)

    def _new(self, cls: Any, args: tuple, kwargs: dict) -> None:
        if isinstance(cls, type) and cls in self.build_types and cls.__new__ is object.__new__:
            self.append(object.__new__(cls))  # an empty instance: BUILD sets its state
        elif isinstance(cls, type) and id(cls) in self.callables:
            self.append(cls.__new__(cls, *args, **kwargs))
        else:
            raise self._refuse(f"creates a {getattr(cls, '__qualname__', cls)!r} from arguments")

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self._new(cls, args, {})

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self._new(cls, args, kwargs)

    def load_build(self) -> None:
        inst = self.stack[-2]
        if isinstance(inst, type) or not isinstance(inst, self.build_types):
            raise self._refuse(f"sets the state of a {type(inst).__qualname__}")
        super().load_build()

    def persistent_load(self, pid: Any) -> Any:
        raise self._refuse("refers to a persistent object")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build


def restricted_loads(data: bytes, allowed: dict[str, Any], callables: Iterable[Any], source: str, what: str) -> Any:
    """
    Unpickle ``data`` with :class:`RestrictedUnpickler`.

    :param data: the pickle
    :param allowed: the globals it may name
    :param callables: the objects among them it may call (numpy's reconstructors are always added)
    :param source: the file, for messages
    :param what: what is read, for messages
    :return: the object
    :raises UntrustedFileError: for anything outside the allow-list
    :raises TeacherLoadError: for a damaged pickle
    """
    numpy_names, numpy_callables = _numpy_globals()
    names = {**numpy_names, **allowed}
    ids = numpy_callables | frozenset(id(value) for value in callables)
    try:
        return RestrictedUnpickler(data, names, ids, source, what).load()
    except UntrustedFileError:
        raise
    except Exception as error:  # a damaged or hostile pickle: any error of the opcodes it holds
        raise TeacherLoadError(f"{source}: could not read its {what} ({type(error).__name__}: {error}).") from error


# ---------------------------------------------------------------------------------------------- SB3 zips
def _safe_member_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return not (name.startswith(("/", "\\")) or ":" in name or ".." in parts or "\x00" in name)


def check_zip_members(path: Path, archive: zipfile.ZipFile) -> list[str]:
    """
    Refuse zips whose member names leave the archive (``../x``, absolute) or that declare huge members.

    Members are never extracted; the names are checked because nothing legitimate has them.

    :param path: the zip, for messages
    :param archive: it, opened
    :return: the member names
    """
    names = []
    for info in archive.infolist():
        if not _safe_member_name(info.filename):
            raise TeacherLoadError(
                f"{path} holds a member named {info.filename!r}, a path out of the archive: an SB3 model never "
                "does. The file was crafted or damaged; do not use it."
            )
        if info.file_size > MAX_WEIGHTS_BYTES:
            raise TeacherLoadError(
                f"{path}: its member {info.filename!r} declares {info.file_size / 2**30:.1f} GiB (limit "
                f"{MAX_WEIGHTS_BYTES / 2**30:.0f} GiB): a zip bomb or a damaged file. Re-download or re-save the teacher."
            )
        names.append(info.filename)
    return names


def read_member(path: Path, archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """
    :param path: the zip, for messages
    :param archive: it, opened
    :param name: the member
    :param limit: the largest size read
    :return: its bytes (zipfile stops at the declared size and checks the CRC)
    """
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise TeacherLoadError(
            f"{path}: its {name!r} declares {info.file_size:,} bytes, more than the {limit:,} a teacher's {name} "
            "may have: a zip bomb or a damaged file."
        )
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise TeacherLoadError(f"{path} is a damaged zip ({name}: {error}): re-download or re-save the teacher.") from error


def _serialized(data: dict[str, Any], key: str) -> bytes | None:
    entry = data.get(key)
    if not isinstance(entry, dict) or ":serialized:" not in entry:
        return None
    try:
        return base64.b64decode(entry[":serialized:"].encode(), validate=False)
    except (ValueError, AttributeError) as error:
        raise TeacherLoadError(f"its {key} is not base64 ({error})") from error


_CLASS_REFERENCE_OPCODES = {
    "PROTO",
    "FRAME",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
    "STRING",
    "MEMOIZE",
    "PUT",
    "BINPUT",
    "LONG_BINPUT",
    "GLOBAL",
    "STACK_GLOBAL",
    "STOP",
}


def class_reference(raw: bytes, source: str, what: str) -> str:
    """
    The ``module.name`` a pickle of a class refers to, read without unpickling (opcode by opcode).

    :param raw: the pickle
    :param source: the file, for messages
    :param what: the entry, for messages
    :return: e.g. ``stable_baselines3.dqn.policies.DQNPolicy``
    :raises UntrustedFileError: if the pickle is more than a reference (a class pickled by value: its code)
    """
    strings: list[str] = []
    reference = None
    try:
        for opcode, argument, _ in pickletools.genops(raw):
            if opcode.name not in _CLASS_REFERENCE_OPCODES:
                raise untrusted(
                    source,
                    f"its {what} is not a reference to an importable class (pickle opcode {opcode.name}: a class "
                    "defined in the training script, pickled with its code)",
                )
            if opcode.name == "GLOBAL":
                reference = str(argument).replace(" ", ".")
            elif opcode.name == "STACK_GLOBAL":
                if len(strings) < 2:
                    raise TeacherLoadError(f"{source}: its {what} is a damaged pickle")
                reference = f"{strings[-2]}.{strings[-1]}"
            elif "UNICODE" in opcode.name or "STRING" in opcode.name:
                strings.append(str(argument))
    except TeacherLoadError:
        raise
    except (ValueError, UnicodeDecodeError) as error:
        raise TeacherLoadError(f"{source}: its {what} is a damaged pickle ({error})") from error
    if reference is None:
        raise TeacherLoadError(f"{source}: its {what} names no class")
    return reference


def _check_plain(value: Any, allowed: tuple[Any, ...], where: str, source: str) -> None:
    """``policy_kwargs`` hold plain values and allowed classes only (each container once: a pickle can nest one in itself)."""
    pending, seen = [(value, where)], set()
    while pending:
        item, at = pending.pop()
        if item is None or isinstance(item, (bool, int, float, str, th.device)) or any(item is cls for cls in allowed):
            continue
        if not isinstance(item, (list, tuple, dict)):
            raise untrusted(source, f"its {at} holds a {type(item).__name__}")
        if id(item) in seen:
            continue  # shared (a list used twice) or nested in itself: each container is checked once
        seen.add(id(item))
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise untrusted(source, f"its {at} has a key of type {type(key).__name__}")
                pending.append((child, f"{at}[{key!r}]"))
        else:
            pending.extend((child, at) for child in item)


def read_model_data(path: Path, device: th.device) -> tuple[dict[str, Any], dict[str, th.Tensor]]:
    """
    What a teacher needs from an SB3 zip, read without unpickling: the policy class, the spaces, ``policy_kwargs``,
    ``use_sde`` and the other plain entries of ``data`` (for the algorithm's name), and the policy's weights.

    :param path: the zip (checked by the caller to be one)
    :param device: where the weights go
    :return: ``data`` (the decoded entries replaced by objects, other serialized entries left as JSON) and the state dict
    """
    source = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_members(path, archive)
            raw = json.loads(read_member(path, archive, "data", MAX_DATA_BYTES).decode())
            weights_bytes = read_member(path, archive, "policy.pth", MAX_WEIGHTS_BYTES)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise TeacherLoadError(f"{path} is a damaged zip ({error}): re-download or re-save the teacher.") from error
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise TeacherLoadError(
            f"{path}: its 'data' entry is not SB3's JSON ({type(error).__name__}): re-save the teacher."
        ) from error
    if not isinstance(raw, dict):
        raise TeacherLoadError(f"{path}: its 'data' entry is not SB3's JSON object: re-save the teacher.")
    # Serialized entries other than those decoded below (schedules, buffers, observations...) stay unread: their
    # JSON as is (which entries exist tells the algorithm apart).
    data: dict[str, Any] = dict(raw)
    data.update(_read_policy_class(raw, source))
    for key in ("observation_space", "action_space"):
        pickled = _serialized(raw, key)
        if pickled is None:
            raise TeacherLoadError(f"{path}: its data has no serialized {key}: save the teacher with SB3's model.save().")
        space = restricted_loads(pickled, _space_globals(), [collections.OrderedDict], source, key)
        if not isinstance(space, spaces.Space):
            raise untrusted(source, f"its {key} is a {type(space).__name__}, not a gymnasium space")
        data[key] = space
    kwargs_pickle = _serialized(raw, "policy_kwargs")
    if kwargs_pickle is not None:
        allowed = _policy_kwargs_globals()
        data["policy_kwargs"] = restricted_loads(
            kwargs_pickle, allowed, [th.device, collections.OrderedDict], source, "policy_kwargs"
        )
    kwargs = data.get("policy_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise untrusted(source, f"its policy_kwargs is a {type(kwargs).__name__}, not a dict")
    _check_plain(kwargs, tuple(_policy_kwargs_globals().values()), "policy_kwargs", source)
    return data, load_weights(weights_bytes, device, f"{path}: policy.pth")


def _read_policy_class(raw: dict[str, Any], source: str) -> dict[str, Any]:
    entry = raw.get("policy_class")
    pickled = _serialized(raw, "policy_class")
    if pickled is None:
        raise TeacherLoadError(
            f"{source}: its policy_class is {entry!r}, not a serialized class: pass the loaded model instead."
        )
    reference = class_reference(pickled, source, "policy_class")
    readable_module = entry.get("__module__") if isinstance(entry, dict) else None
    if readable_module is not None and not reference.startswith(f"{readable_module}."):
        raise TeacherLoadError(
            f"{source}: its policy_class pickle names {reference} but its readable part says module {readable_module}: "
            "a damaged or crafted file."
        )
    known = policy_classes()
    if reference not in known:
        raise untrusted(
            source,
            f"its policy_class is {reference}, not a policy of stable-baselines3, sb3-contrib or sb3-distill "
            "(a custom policy class: its module is imported, and runs, to build it)",
        )
    return {"policy_class": known[reference]}


def load_weights(raw: bytes, device: th.device | str, source: str, trust: bool = False) -> dict[str, th.Tensor]:
    """
    :param raw: a ``torch.save`` file of a state dict
    :param device: where the tensors go
    :param source: the file, for messages
    :param trust: unpickle fully (``weights_only=False``)
    :return: the state dict
    """
    try:
        state = th.load(io.BytesIO(raw), map_location=device, weights_only=not trust)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise untrusted(source, f"it holds more than tensors ({first_line[:200]})") from error
    except Exception as error:
        raise TeacherLoadError(f"{source}: not a torch weights file ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, th.Tensor) for key, value in state.items()
    ):
        raise TeacherLoadError(f"{source}: not a state dict of tensors (it holds a {type(state).__name__}).")
    return state


def check_policy_size(
    policy_class: type[BasePolicy], args: tuple[Any, ...], kwargs: dict[str, Any], weights: dict[str, th.Tensor], source: str
) -> None:
    """
    Refuse a policy whose networks would be much larger than its weights file, before any memory is allocated.

    The file's spaces and ``policy_kwargs`` (``net_arch=[10**6, 10**6]``) decide how large the rebuilt policy is;
    the weights file, read already, is bounded. The policy is first built on torch's ``meta`` device (shapes, no
    data): it may hold at most three times the weights' elements (old files omit the actor-critic's aliases of a
    shared features extractor, which :func:`~sb3_distill.teachers.loading.upgrade_state_dict` fills). A policy the
    ``meta`` device cannot build is built as it is (none of SB3's and sb3-contrib's feed-forward policies).

    :param policy_class: the allowed policy class
    :param args: its positional arguments (the spaces, the schedule)
    :param kwargs: its keyword arguments
    :param weights: the state dict read from the file
    :param source: the file, for messages
    """
    probe_class = type(policy_class.__name__, (policy_class,), {"device": property(lambda self: th.device("meta"))})
    validate = th.distributions.Distribution._validate_args
    th.distributions.Distribution.set_default_validate_args(False)  # gSDE checks its std with .item()
    try:
        with th.device("meta"):
            probe = probe_class(*args, **kwargs)
        built = sum(tensor.numel() for tensor in probe.state_dict().values())
    except Exception:
        return
    finally:
        th.distributions.Distribution.set_default_validate_args(validate)
    stored = sum(tensor.numel() for tensor in weights.values())
    if built > 3 * stored + 4096:
        raise TeacherLoadError(
            f"{source}: its spaces and policy_kwargs make a {policy_class.__name__} of {built:,} parameters, its weights "
            f"hold {stored:,}: a crafted or damaged file (it is not built)."
        )


# ---------------------------------------------------------------------------------------------- side files
def read_side_file(path: Path, limit: int = MAX_SIDE_FILE_BYTES) -> bytes:
    """
    :param path: a ``vecnormalize.pkl``, ``config.yml``...
    :param limit: the largest size read
    :return: its bytes
    """
    size = path.stat().st_size
    if size > limit:
        raise TeacherLoadError(
            f"{path} has {size:,} bytes, more than the {limit:,} such a file may have: not a teacher's file."
        )
    return path.read_bytes()


def load_vec_normalize_safely(path: Path) -> Any:
    """
    ``VecNormalize`` statistics through :class:`RestrictedUnpickler`: numpy arrays and scalars, gymnasium (or old
    ``gym``) spaces, SB3's ``VecNormalize`` and ``RunningMeanStd`` state.

    :param path: the pickle
    :return: what it holds (the caller checks that it is a ``VecNormalize``)
    """
    allowed = _vec_normalize_globals()
    return restricted_loads(read_side_file(path), allowed, [collections.OrderedDict], str(path), "content")


_ORDERED_DICT_TAG = "tag:yaml.org,2002:python/object/apply:collections.OrderedDict"


@functools.cache
def _yaml_loader() -> type:
    import yaml

    class ZooLoader(yaml.SafeLoader):
        """SafeLoader plus what rl-zoo3 writes: ``OrderedDict`` (read as a dict) and tuples."""

    def ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
        if not isinstance(node, yaml.SequenceNode):
            raise yaml.constructor.ConstructorError(
                None, None, "an OrderedDict written other than by rl-zoo3", node.start_mark
            )
        args = loader.construct_sequence(node, deep=True)
        pairs = args[0] if args else []
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
            raise yaml.constructor.ConstructorError(None, None, "an OrderedDict that is not a list of pairs", node.start_mark)
        return {key: value for key, value in pairs}

    def python_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[Any, ...]:
        return tuple(loader.construct_sequence(node, deep=True))  # type: ignore[arg-type]

    ZooLoader.add_constructor(_ORDERED_DICT_TAG, ordered_dict)
    ZooLoader.add_constructor("tag:yaml.org,2002:python/tuple", python_tuple)
    return ZooLoader


def load_yaml(path: Path, trust: bool = False) -> dict[str, Any]:
    """
    rl-zoo3's ``config.yml`` / ``args.yml`` (an ``OrderedDict`` with python tags) as a dict, without constructing
    other python objects.

    :param path: the file
    :param trust: read it with PyYAML's ``UnsafeLoader`` (any python tag)
    :return: its mapping (empty for an empty file)
    """
    import yaml

    text = read_side_file(path)
    try:
        loaded = yaml.load(text, Loader=yaml.UnsafeLoader if trust else _yaml_loader())
    except yaml.constructor.ConstructorError as error:
        raise untrusted(path, f"it holds a YAML tag that constructs a python object ({error.problem})") from error
    except yaml.YAMLError as error:
        raise TeacherLoadError(f"{path} is not valid YAML ({error}).") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise TeacherLoadError(f"{path} holds a {type(loaded).__name__}, not rl-zoo3's mapping of settings.")
    return dict(loaded)


def check_inside(path: Path, root: Path | None) -> Path:
    """
    Refuse a file of a run folder that is a link to somewhere outside it.

    :param path: the file
    :param root: the folder it must resolve into (``None``: no check)
    :return: ``path``
    """
    if root is None:
        return path
    target, base = path.resolve(), root.resolve()
    if target != base and base not in target.parents:
        raise untrusted(path, f"it is a link to {target}, outside the folder {base} it was found in")
    return path


__all__ = [
    "MAX_DATA_BYTES",
    "MAX_SIDE_FILE_BYTES",
    "MAX_WEIGHTS_BYTES",
    "TRUST_ENV_VAR",
    "RestrictedUnpickler",
    "UntrustedFileError",
    "check_inside",
    "class_reference",
    "load_vec_normalize_safely",
    "load_weights",
    "load_yaml",
    "policy_classes",
    "read_model_data",
    "restricted_loads",
    "trust_remote_code",
]
