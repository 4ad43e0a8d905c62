"""
Teachers from strangers: crafted files never run the code hidden in them, in every teacher source.

Every hostile file is generated here, in a temporary folder, from the bundled or zoo teachers (no live payload is
committed). Each payload would create a marker file if it ran; every case ends in a clear error or a safe load, and
the marker never exists. One control loads a crafted file with ``trust_remote_code=True`` and sees its payload run:
the payloads are live, so the checks can fail.
"""

import base64
import contextlib
import io
import json
import os
import pickle
import shutil
import struct
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import FlattenExtractor

from sb3_distill import load_teacher
from sb3_distill.errors import TeacherLoadError
from sb3_distill.teachers import loading
from sb3_distill.teachers.loading import load_vec_normalize
from sb3_distill.teachers.safe_files import MAX_WEIGHTS_BYTES, UntrustedFileError, class_reference, load_yaml

BUNDLED_RUN = loading.BUNDLED_DIR / "dqn/CartPole-v1_1"
OPT_IN = "trust_remote_code=True"


class Payload:
    """Unpickled, it creates ``marker`` (what a real attack would do with a shell command)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"open({self.marker!r}, 'w').close()",)


class BigArray:
    """Unpickled, it asks numpy for an empty 80 GB array (``_reconstruct(ndarray, (10**10,), ...)``)."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, (10**10,), b"b")


class BigBox:
    """Unpickled, it asks gymnasium for a 80 GB Box (``Box(0, 1, shape=(10**10,))``)."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return spaces.Box, (0.0, 1.0, (10**10,))


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("SB3_DISTILL_TRUST_REMOTE_CODE", raising=False)
    path = tmp_path / "PAYLOAD_RAN"
    yield path
    assert not path.exists(), "a payload ran"


def _serialized(obj: Any) -> dict[str, str]:
    return {":type:": "<class 'object'>", ":serialized:": base64.b64encode(pickle.dumps(obj)).decode()}


def _rewrite_zip(
    source: Path, target: Path, data: dict[str, Any] | None = None, members: dict[str, bytes] | None = None
) -> Path:
    """A copy of an SB3 zip with entries of ``data`` and whole members replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for name in original.namelist():
            content = original.read(name)
            if name == "data" and data:
                content = json.dumps({**json.loads(content), **data}).encode()
            copy.writestr(name, (members or {}).get(name, content))
        for name, content in (members or {}).items():
            if name not in original.namelist():
                copy.writestr(name, content)
    return target


def _run_folder(
    root: Path, zip_file: Path, algo: str = "dqn", env: str = "CartPole-v1", side: dict[str, bytes] | None = None
) -> Path:
    """rl-zoo3's layout ``root/algo/env_1/{env.zip, env/config.yml, ...}`` around a (crafted) zip."""
    run = root / algo / f"{env}_1"
    (run / env).mkdir(parents=True, exist_ok=True)
    shutil.copy(zip_file, run / f"{env}.zip")
    shutil.copy(BUNDLED_RUN / "CartPole-v1/config.yml", run / env / "config.yml")
    for name, content in (side or {}).items():
        (run / env / name).write_bytes(content)
    return run


def _serialized_fields() -> list[str]:
    with zipfile.ZipFile(BUNDLED_RUN / "CartPole-v1.zip") as archive:
        data = json.loads(archive.read("data"))
    return sorted(key for key, value in data.items() if isinstance(value, dict) and ":serialized:" in value)


@contextlib.contextmanager
def _memory_stays_bounded(limit: int = 64 * 2**20) -> Iterator[None]:
    """The block allocates less than ``limit`` bytes at its peak (Python and numpy allocations, tracemalloc)."""
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak {peak} bytes"


#: The entries a teacher decodes: a payload there is refused; anywhere else it is never read.
DECODED = {"policy_class", "observation_space", "action_space", "policy_kwargs"}


# ------------------------------------------------------------------------------------------- data fields
@pytest.mark.parametrize("field", [*_serialized_fields(), "policy_kwargs"])
def test_a_payload_in_any_pickled_field_of_data_never_runs(field: str, marker: Path, tmp_path: Path) -> None:
    crafted = _rewrite_zip(
        BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "crafted.zip", data={field: _serialized(Payload(marker))}
    )
    if field in DECODED:
        # the policy class is read opcode by opcode: a pickle that calls anything is not a class reference
        needs = "is not a reference to an importable class" if field == "policy_class" else r"names the global builtins\.exec"
        with pytest.raises(UntrustedFileError, match=rf"its {field} {needs}.*{OPT_IN}"):
            load_teacher(crafted)
    else:
        teacher = load_teacher(crafted)  # the entry is never read: a safe load, same teacher
        assert teacher.fingerprint == load_teacher(BUNDLED_RUN / "CartPole-v1.zip").fingerprint


def test_the_payloads_are_live_with_trust(marker: Path, tmp_path: Path) -> None:
    """The control: SB3's own reader (the opt-in) runs the payload, so the tests above can fail."""
    crafted = _rewrite_zip(
        BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "crafted.zip", data={"observation_space": _serialized(Payload(marker))}
    )
    with pytest.raises(TeacherLoadError):
        load_teacher(crafted, trust_remote_code=True)
    assert marker.exists()
    marker.unlink()


def test_a_policy_class_that_is_not_a_known_policy(marker: Path, tmp_path: Path) -> None:
    source = BUNDLED_RUN / "CartPole-v1.zip"
    entry = {
        ":type:": "<class 'abc.ABCMeta'>",
        ":serialized:": base64.b64encode(pickle.dumps(os.system)).decode(),
        "__module__": "posix",
    }
    with pytest.raises(UntrustedFileError, match=r"policy_class is posix\.system, not a policy of stable-baselines3"):
        load_teacher(_rewrite_zip(source, tmp_path / "global.zip", data={"policy_class": entry}))
    # A class pickled by value (its code in the pickle) is refused without reading further.
    by_value = {**entry, ":serialized:": base64.b64encode(pickle.dumps(Payload(marker))).decode()}
    with pytest.raises(UntrustedFileError, match="not a reference to an importable class"):
        load_teacher(_rewrite_zip(source, tmp_path / "by_value.zip", data={"policy_class": by_value}))
    # The readable module and the pickle must agree.
    with zipfile.ZipFile(source) as archive:
        real = json.loads(archive.read("data"))["policy_class"]
    with pytest.raises(TeacherLoadError, match="readable part says module"):
        load_teacher(_rewrite_zip(source, tmp_path / "mismatch.zip", data={"policy_class": {**real, "__module__": "evil"}}))
    assert class_reference(pickle.dumps(th.nn.ReLU), "x", "y") == "torch.nn.modules.activation.ReLU"


def test_spaces_and_kwargs_cannot_call_allowed_classes_with_the_files_arguments(marker: Path, tmp_path: Path) -> None:
    """``Box(0, 1, shape=(10**10,))`` would allocate 80 GB: classes are never called, memory stays bounded."""
    with _memory_stays_bounded():
        crafted = _rewrite_zip(
            BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "big.zip", data={"observation_space": _serialized(BigBox())}
        )
        with pytest.raises(UntrustedFileError, match=r"observation_space calls Box"):
            load_teacher(crafted)
        crafted = _rewrite_zip(
            BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "array.zip", data={"action_space": _serialized(BigArray())}
        )
        with pytest.raises(TeacherLoadError, match=r"could not read its action_space .*of shape \(10000000000,\)"):
            load_teacher(crafted)


def test_a_policy_much_larger_than_its_weights_is_not_built(marker: Path, tmp_path: Path) -> None:
    """``net_arch=[10**6, 10**6]`` would be a 4 TB network: it is measured on torch's meta device, and refused."""
    with _memory_stays_bounded():
        crafted = _rewrite_zip(
            BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "huge.zip", data={"policy_kwargs": {"net_arch": [10**6, 10**6]}}
        )
        with pytest.raises(TeacherLoadError, match=r"DQNPolicy of 2,000,016,000,004 parameters, its weights hold 135,172"):
            load_teacher(crafted)


# ------------------------------------------------------------------------------------------- other members
def test_a_payload_in_pytorch_variables_is_never_read(marker: Path, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    th.save(Payload(marker), buffer)
    crafted = _rewrite_zip(
        BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "crafted.zip", members={"pytorch_variables.pth": buffer.getvalue()}
    )
    assert load_teacher(crafted).algo == "dqn"


def test_a_non_tensor_pickle_in_policy_pth(marker: Path, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    th.save({"q_net.q_net.0.weight": Payload(marker)}, buffer)
    crafted = _rewrite_zip(
        BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "crafted.zip", members={"policy.pth": buffer.getvalue()}
    )
    with pytest.raises(UntrustedFileError, match=rf"policy\.pth: it holds more than tensors.*{OPT_IN}"):
        load_teacher(crafted)


def _vecnormalize_payloads(marker: Path) -> dict[str, bytes]:
    normalizer = load_vec_normalize(Path(__file__).parent / "data/zoo/ppo/MountainCar-v0_1/MountainCar-v0/vecnormalize.pkl")
    normalizer.clip_obs = Payload(marker)  # type: ignore[assignment]
    normalizer.venv, normalizer.class_attributes, normalizer.returns = None, {}, np.zeros(1)  # what pickling drops
    return {"whole file": pickle.dumps(Payload(marker)), "inside the statistics": pickle.dumps(normalizer)}


def test_a_payload_in_vecnormalize_pkl(marker: Path, tmp_path: Path) -> None:
    for name, content in _vecnormalize_payloads(marker).items():
        (tmp_path / "vecnormalize.pkl").write_bytes(content)
        with pytest.raises(UntrustedFileError, match=rf"builtins\.exec.*{OPT_IN}"):
            load_vec_normalize(tmp_path / "vecnormalize.pkl")
        run = _run_folder(tmp_path / name, BUNDLED_RUN / "CartPole-v1.zip", side={"vecnormalize.pkl": content})
        with pytest.raises(UntrustedFileError, match=r"builtins\.exec"):
            load_teacher(run)


YAML_PAYLOADS = {
    "config.yml": "!!python/object/apply:builtins.exec [\"open({marker!r}, 'w').close()\"]\n",
    "args.yml": "env_kwargs: !!python/object/new:builtins.exec [\"open({marker!r}, 'w').close()\"]\n",
}


@pytest.mark.parametrize("name", sorted(YAML_PAYLOADS))
def test_yaml_tags_that_construct_objects(name: str, marker: Path, tmp_path: Path) -> None:
    text = YAML_PAYLOADS[name].format(marker=str(marker))
    run = _run_folder(tmp_path, BUNDLED_RUN / "CartPole-v1.zip", side={name: text.encode()})
    with pytest.raises(UntrustedFileError, match=rf"{name}: it holds a YAML tag.*{OPT_IN}"):
        load_teacher(run)


def test_rl_zoo_yaml_loads_safely(zoo_dir: Path) -> None:
    """rl-zoo3's OrderedDict tag and tuples are read as plain values."""
    config = load_yaml(zoo_dir / "ppo/Walker2d-v3_1/Walker2d-v3/config.yml")
    assert config["env_wrapper"] == "sb3_contrib.common.wrappers.TimeFeatureWrapper" and config["normalize"] is True
    assert load_yaml(zoo_dir / "ppo/Walker2d-v3_1/Walker2d-v3/args.yml")["env"] == "Walker2d-v3"


# ------------------------------------------------------------------------------------------- the zip itself
def test_path_traversal_member_names(marker: Path, tmp_path: Path) -> None:
    for name in ("../../escaped", "/tmp/absolute", "C:/windows"):
        crafted = _rewrite_zip(BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "crafted.zip", members={name: b"x"})
        with pytest.raises(TeacherLoadError, match="a path out of the archive"):
            load_teacher(crafted)
    assert not (tmp_path.parent.parent / "escaped").exists()


def _declare_size(path: Path, member: str, size: int) -> None:
    """Patch the uncompressed size a member declares, in its local header and in the central directory."""
    raw = bytearray(path.read_bytes())
    # (signature, offset of the uncompressed size, offset of the name length, offset of the name)
    for signature, size_at, length_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        start = raw.find(signature)
        while start >= 0:
            (length,) = struct.unpack_from("<H", raw, start + length_at)
            if raw[start + name_at : start + name_at + length] == member.encode():
                struct.pack_into("<I", raw, start + size_at, size)
            start = raw.find(signature, start + 4)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("member", ["policy.pth", "critic.optimizer.pth"])
def test_a_zip_bomb_is_refused_before_it_is_read(member: str, marker: Path, tmp_path: Path) -> None:
    crafted = _rewrite_zip(BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "bomb.zip", members={member: b"\0" * 1000})
    _declare_size(crafted, member, 3 * 2**30)
    assert zipfile.ZipFile(crafted).getinfo(member).file_size == 3 * 2**30 > MAX_WEIGHTS_BYTES
    with _memory_stays_bounded():
        with pytest.raises(TeacherLoadError, match=r"declares 3\.0 GiB.*zip bomb"):
            load_teacher(crafted)


def test_a_truncated_zip(marker: Path, tmp_path: Path) -> None:
    crafted = _rewrite_zip(
        BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "full.zip", data={"observation_space": _serialized(Payload(marker))}
    )
    raw = crafted.read_bytes()
    for cut in (len(raw) // 3, len(raw) - 30):
        (tmp_path / "truncated.zip").write_bytes(raw[:cut])
        with pytest.raises(TeacherLoadError, match=r"truncated|damaged"):
            load_teacher(tmp_path / "truncated.zip")


# ------------------------------------------------------------------------------------------- links
@pytest.mark.parametrize("linked", ["CartPole-v1.zip", "CartPole-v1/config.yml", "CartPole-v1/vecnormalize.pkl"])
def test_a_link_out_of_a_run_folder_is_refused(linked: str, marker: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "target").write_bytes(
        (BUNDLED_RUN / linked).read_bytes() if (BUNDLED_RUN / linked).exists() else pickle.dumps(Payload(marker))
    )
    run = _run_folder(tmp_path / "logs", BUNDLED_RUN / "CartPole-v1.zip")
    (run / linked).unlink(missing_ok=True)
    (run / linked).symlink_to(outside / "target")
    with pytest.raises(UntrustedFileError, match=rf"a link to .*elsewhere/target, outside the folder .*{OPT_IN}"):
        load_teacher(run)
    with pytest.raises(UntrustedFileError, match="outside the folder"):
        load_teacher("dqn/CartPole-v1", zoo_dirs=[tmp_path / "logs"])


# ------------------------------------------------------------------------------------------- every source
def _hub_cache(cache: Path, zip_file: Path, side: dict[str, bytes]) -> Path:
    """A local Hugging Face cache of ``sb3/dqn-CartPole-v1`` as huggingface_hub writes it (snapshot links into blobs)."""
    folder = cache / "models--sb3--dqn-CartPole-v1"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot, blobs = folder / "snapshots" / commit, folder / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    files = {
        "dqn-CartPole-v1.zip": zip_file.read_bytes(),
        "config.yml": (BUNDLED_RUN / "CartPole-v1/config.yml").read_bytes(),
        **side,
    }
    for index, (name, content) in enumerate(files.items()):
        (blobs / f"blob{index}").write_bytes(content)
        (snapshot / name).symlink_to(Path("../../blobs") / f"blob{index}")
    return snapshot


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, target))


def _zoo_id_source(base: Path, zip_file: Path, side: dict[str, bytes], mp: pytest.MonkeyPatch) -> str:
    _run_folder(base / "zoo", zip_file, side=side)
    mp.setenv("SB3_DISTILL_ZOO", str(base / "zoo"))
    return "dqn/CartPole-v1"


def _hf_cache_source(base: Path, zip_file: Path, side: dict[str, bytes], mp: pytest.MonkeyPatch) -> str:
    from huggingface_hub import constants

    _hub_cache(base / "hub", zip_file, side)
    mp.setattr(constants, "HF_HUB_CACHE", str(base / "hub"))
    return "dqn/CartPole-v1"


def _bundled_source(base: Path, zip_file: Path, side: dict[str, bytes], mp: pytest.MonkeyPatch) -> str:
    _run_folder(base / "bundled", zip_file, side=side)
    mp.setattr(loading, "BUNDLED_DIR", base / "bundled")
    return "dqn/CartPole-v1"


#: Each builds a teacher (a zip and its side files) where one source finds it, and returns the spec.
SOURCES: dict[str, Callable[[Path, Path, dict[str, bytes], pytest.MonkeyPatch], Any]] = {
    "path": lambda base, zip_file, side, mp: _copy(zip_file, base / "teacher.zip"),
    "run folder": lambda base, zip_file, side, mp: _run_folder(base / "logs", zip_file, side=side),
    "zoo id": _zoo_id_source,
    "hf cache": _hf_cache_source,
    "bundled": _bundled_source,
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_teacher_source_loads_safely(source: str, marker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A payload in the spaces, and one in vecnormalize.pkl / vec_normalize.pkl, are refused wherever the teacher is."""
    from huggingface_hub import constants

    # Nothing else to find: no ./logs, an empty zoo and Hugging Face cache, the Hub offline.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SB3_DISTILL_ZOO", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    crafted = _rewrite_zip(
        BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "crafted.zip", data={"action_space": _serialized(Payload(marker))}
    )
    spec = SOURCES[source](tmp_path / "a", crafted, {}, monkeypatch)
    with pytest.raises(UntrustedFileError, match=rf"action_space names the global builtins\.exec.*{OPT_IN}"):
        load_teacher(spec)
    if source != "path":
        side_name = "vec_normalize.pkl" if source == "hf cache" else "vecnormalize.pkl"
        spec = SOURCES[source](
            tmp_path / "b", BUNDLED_RUN / "CartPole-v1.zip", {side_name: pickle.dumps(Payload(marker))}, monkeypatch
        )
        with pytest.raises(UntrustedFileError, match=r"vec_?normalize\.pkl: its content names the global builtins\.exec"):
            load_teacher(spec)
    # and a clean teacher from the same source loads by default, unchanged
    teacher = load_teacher(SOURCES[source](tmp_path / "c", BUNDLED_RUN / "CartPole-v1.zip", {}, monkeypatch))
    assert teacher.env_id == (None if source == "path" else "CartPole-v1")  # a bare zip does not record its env
    assert teacher.fingerprint == load_teacher(BUNDLED_RUN).fingerprint
    assert str(tmp_path / "c") in str(teacher.source_path)


# ------------------------------------------------------------------------------------------- real files
def test_zoo_files_load_the_same_with_and_without_trust(zoo_dir: Path) -> None:
    """Old gym pickles, SB3 1.x files, QR-DQN, SAC, TimeFeature and MuJoCo -v3: the safe reader gives the same teacher."""
    runs = sorted(path.parent for path in zoo_dir.glob("*/*_1/*.zip"))
    assert runs == sorted(zoo_dir.glob("*/*_1")) and len(runs) >= 8  # every run folder of tests/data/zoo
    for run in runs:
        safe, trusted = load_teacher(run), load_teacher(run, trust_remote_code=True)
        assert safe.fingerprint == trusted.fingerprint, run
        assert (safe.env_id, safe.algo, safe.config, safe.env_kwargs) == (
            trusted.env_id,
            trusted.algo,
            trusted.config,
            trusted.env_kwargs,
        )
        assert safe.observation_space == trusted.observation_space and safe.action_space == trusted.action_space
        obs = np.stack([safe.observation_space.sample() for _ in range(8)])
        assert np.array_equal(safe.predict(obs)[0], trusted.predict(obs)[0]), run


def test_a_default_load_never_calls_the_unrestricted_unpicklers(zoo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pickle.load / loads / Unpickler and cloudpickle are not called for any real teacher (with its statistics)."""
    import cloudpickle

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an unrestricted unpickler was called")

    load_teacher(BUNDLED_RUN)  # torch imports some modules lazily, with pickle, at the first policy built
    for module, name in (
        (pickle, "load"),
        (pickle, "loads"),
        (pickle, "Unpickler"),
        (cloudpickle, "loads"),
        (cloudpickle, "load"),
    ):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.delenv("SB3_DISTILL_TRUST_REMOTE_CODE", raising=False)
    for run in [*sorted(zoo_dir.glob("*/*_1")), *sorted(loading.BUNDLED_DIR.glob("*/*_1"))]:
        assert load_teacher(run).policy is not None


# ------------------------------------------------------------------------------------------- datasets
@pytest.fixture(scope="module")
def small_dataset() -> Any:
    from sb3_distill.common.datasets import collect_teacher_dataset

    return collect_teacher_dataset(BUNDLED_RUN, "CartPole-v1", 40, seed=0)


def test_datasets_load_without_unpickling(
    small_dataset: Any, marker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sb3_distill.common.datasets import DatasetError, load_teacher_dataset, save_teacher_dataset

    path = save_teacher_dataset(small_dataset, tmp_path / "data")
    assert path.suffix == ".npz"
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted(
            [
                "dataset.json",
                *(f"{n}.npy" for n in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")),
            ]
        )
    with monkeypatch.context() as patched:
        patched.setattr(pickle, "load", None)
        patched.setattr(pickle, "loads", None)
        loaded = load_teacher_dataset(tmp_path / "data")
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        assert np.array_equal(getattr(loaded, name), getattr(small_dataset, name))
    assert (loaded.pos, loaded.full, loaded.observation_space, loaded.action_space) == (
        small_dataset.pos,
        small_dataset.full,
        small_dataset.observation_space,
        small_dataset.action_space,
    )
    # An object array (a pickle inside an .npy) is refused, as is a space that is not one of the known kinds.
    object_array = io.BytesIO()
    np.save(object_array, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    meta = json.loads(zipfile.ZipFile(path).read("dataset.json"))
    crafted = {
        "rewards.npy": (object_array.getvalue(), r"Object arrays cannot be loaded when allow_pickle=False"),
        "dataset.json": (json.dumps({**meta, "action_space": {"type": "os.system"}}).encode(), "unknown space 'os.system'"),
    }
    for member, (content, message) in crafted.items():
        target = _rewrite_zip(path, tmp_path / f"crafted_{member}.npz", members={member: content})
        with pytest.raises(DatasetError, match=rf"{message}.*truncated or not a dataset"):
            load_teacher_dataset(target)


def test_a_pickled_dataset_needs_trust(small_dataset: Any, marker: Path, tmp_path: Path) -> None:
    from sb3_distill.common.datasets import UntrustedDatasetError, load_teacher_dataset, save_teacher_dataset

    (tmp_path / "payload.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UntrustedDatasetError, match=rf"is a pickled dataset.*{OPT_IN}.*save_teacher_dataset"):
        load_teacher_dataset(tmp_path / "payload.pkl")
    # An old dataset (a pickled ReplayBuffer) still loads with the opt-in, and converts.
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(small_dataset))
    with pytest.raises(UntrustedDatasetError):
        load_teacher_dataset(tmp_path / "old")
    old = load_teacher_dataset(tmp_path / "old.pkl", trust_remote_code=True)
    converted = load_teacher_dataset(save_teacher_dataset(old, tmp_path / "new.npz"))
    assert np.array_equal(converted.observations, small_dataset.observations) and converted.size() == small_dataset.size()


# ------------------------------------------------------------------------------------------- what needs trust
class CustomExtractor(FlattenExtractor):
    """A features extractor of the user's own: its module would be imported (and run) to rebuild the policy."""


def test_policy_kwargs_with_known_classes_load_safely_custom_ones_need_trust(tmp_path: Path, marker: Path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

    known = {"activation_fn": th.nn.Tanh, "optimizer_class": RMSpropTFLike, "net_arch": {"pi": [8], "vf": [8]}}
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs=known, n_steps=16, batch_size=16, seed=0)
    model.save(tmp_path / "known.zip")
    teacher = load_teacher(tmp_path / "known.zip")
    assert isinstance(teacher.policy.mlp_extractor.policy_net[1], th.nn.Tanh)
    obs = np.zeros((3, 4), dtype=np.float32)
    th.testing.assert_close(
        teacher.action_logits(obs), load_teacher(tmp_path / "known.zip", trust_remote_code=True).action_logits(obs)
    )

    PPO(
        "MlpPolicy", "CartPole-v1", policy_kwargs={"features_extractor_class": CustomExtractor}, n_steps=16, batch_size=16
    ).save(tmp_path / "custom.zip")
    with pytest.raises(
        UntrustedFileError, match=rf"policy_kwargs names the global .*test_teacher_security\.CustomExtractor.*{OPT_IN}"
    ):
        load_teacher(tmp_path / "custom.zip")
    assert load_teacher(tmp_path / "custom.zip", trust_remote_code=True).kind == "actor_critic"


def test_the_loading_path_goes_one_way() -> None:
    """Loading finds and reads the file; Teacher and the kinds only wrap what they get (no import back into loading)."""
    import ast

    teachers = Path(loading.__file__).parent
    for module in ("teacher", "kinds", "spaces", "envs", "legacy", "safe_files"):
        tree = ast.parse((teachers / f"{module}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert "sb3_distill.teachers.loading" not in imported, module
        if module != "safe_files":
            assert "sb3_distill.teachers.safe_files" not in imported, module


def test_policy_kwargs_nested_in_themselves_end_in_an_error(marker: Path, tmp_path: Path) -> None:
    """A list that holds itself 64 levels deep (2**64 paths) is checked once per list: a clear error, at once."""
    deep: list[Any] = [64]
    for _ in range(64):
        deep = [deep, deep]
    looped: list[Any] = [64]
    looped.append(looped)
    for name, net_arch in (("deep", deep), ("looped", looped)):
        crafted = _rewrite_zip(
            BUNDLED_RUN / "CartPole-v1.zip",
            tmp_path / f"{name}.zip",
            data={"policy_kwargs": _serialized({"net_arch": net_arch})},
        )
        with pytest.raises(TeacherLoadError):
            load_teacher(crafted)


def test_the_command_lines_opt_in(marker: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--trust-remote-code`` works on every ``sb3-distill`` command; without it a crafted teacher never runs."""
    from sb3_distill import cli

    crafted = _rewrite_zip(
        BUNDLED_RUN / "CartPole-v1.zip", tmp_path / "crafted.zip", data={"observation_space": _serialized(Payload(marker))}
    )
    command = ["robustness", str(crafted), "--env", "CartPole-v1", "--perturbation", "obs_noise", "--levels", "0"]
    assert cli.main(command) == 2
    error = capsys.readouterr().err
    assert "names the global" in error and "--trust-remote-code" in error and not marker.exists()
    try:
        assert cli.main([*command, "--trust-remote-code"]) == 2  # SB3's reader runs the payload, then the load fails
        assert os.environ["SB3_DISTILL_TRUST_REMOTE_CODE"] == "1"
    finally:
        os.environ.pop("SB3_DISTILL_TRUST_REMOTE_CODE", None)
    assert marker.exists()
    marker.unlink()
