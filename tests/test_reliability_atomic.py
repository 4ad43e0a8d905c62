"""
Saves are atomic: a process SIGKILLed while it writes, or a full disk, leaves the previous file intact and loadable.

Every writer of the package is tried: ``DistillDQN.save``, ``PolicyDistill.save``, ``save_replay_buffer`` (with the
teacher-output cache), ``collect_teacher_dataset`` and export (Python and ``sb3-distill export``). A forked child
rewrites the file in a loop on a slow disk (each ``write()`` call sleeps, so that kills land inside writes) and is
SIGKILLed at a random moment, ten times; after each kill the file must load. The same harness on SB3's own
``DQN.save`` (which writes in place) breaks the file: the test can fail. The temporary file a killed save leaves
behind is hidden from model listings and removed by the next save.
"""

import builtins
import contextlib
import errno
import io
import multiprocessing
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stable_baselines3 import DQN

from sb3_distill import DistillDQN, PolicyDistill, load_teacher
from sb3_distill.common.datasets import collect_teacher_dataset, load_teacher_dataset
from sb3_distill.export import export, load_exported
from sb3_distill.export import main as export_main

TINY = dict(learning_starts=50, buffer_size=300, batch_size=16, policy_kwargs=dict(net_arch=[16]), seed=0)
N_KILLS = 10
FORK = multiprocessing.get_context("fork")


class SlowWriter(io.BufferedWriter):
    """A binary file whose ``write`` sleeps first: a slow disk, so that a kill at a random moment lands inside a write."""

    latency, bandwidth = 0.001, 20_000  # seconds per call, bytes per second

    def write(self, data: Any) -> int:
        time.sleep(self.latency + len(data) / self.bandwidth)
        return super().write(data)


def slow_disk() -> None:
    """Make every binary file opened for writing from Python slow (in this process only: called in the forked child)."""
    real_open = io.open

    def slow_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "b" in mode and "+" not in mode and mode[0] in "wxa":
            return SlowWriter(io.FileIO(file, mode))
        return real_open(file, mode, *args, **kwargs)

    io.open = builtins.open = slow_open  # type: ignore[assignment]


# ------------------------------------------------------------------------------------------------ the writers
class Writer:
    """One way of writing a file: ``write(path, version)`` and ``check(path) -> version`` (raises if unloadable)."""

    name = ""
    suffix = ".zip"

    def write(self, path: Path, version: int) -> None:
        raise NotImplementedError

    def check(self, path: Path) -> int:
        raise NotImplementedError


class ModelWriter(Writer):
    """``model.save()``; the version is stored in the saved ``num_timesteps``."""

    def __init__(self, name: str, make: Callable[[], Any], load: Callable[[Path], Any]) -> None:
        self.name, self.model, self.load = name, make(), load

    def write(self, path: Path, version: int) -> None:
        self.model.num_timesteps = version
        self.model.save(path)

    def check(self, path: Path) -> int:
        return int(self.load(path).num_timesteps)


class ReplayBufferWriter(Writer):
    """``save_replay_buffer()`` of a DistillDQN whose buffer caches the teacher's outputs; the version is ``pos``."""

    name, suffix = "save_replay_buffer", ".pkl"

    def __init__(self) -> None:
        self.model = DistillDQN("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **TINY)
        self.model.learn(120)
        self.reader = DistillDQN("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **TINY)

    def write(self, path: Path, version: int) -> None:
        self.model.replay_buffer.pos = version % self.model.replay_buffer.buffer_size
        self.model.save_replay_buffer(path)

    def check(self, path: Path) -> int:
        self.reader.load_replay_buffer(path)
        assert hasattr(self.reader.replay_buffer, "update_teacher_outputs")  # the cache came back with it
        return int(self.reader.replay_buffer.pos)


class DatasetWriter(Writer):
    """``collect_teacher_dataset(path=...)``; the version is the number of recorded steps."""

    name, suffix = "collect_teacher_dataset", ".pkl"

    def __init__(self) -> None:
        self.teacher = load_teacher("dqn/CartPole-v1")

    def write(self, path: Path, version: int) -> None:
        collect_teacher_dataset(self.teacher, "CartPole-v1", 50 + version % 7, path=path, seed=0)

    def check(self, path: Path) -> int:
        return load_teacher_dataset(path).size() - 50


class ExportWriter(Writer):
    """``export()`` in Python, or the ``sb3-distill export`` command; the version is in the student's output bias."""

    def __init__(self, format: str, command: bool, tmp_path: Path) -> None:
        self.format, self.command = format, command
        self.name = f"{'sb3-distill export' if command else 'export()'} {format}"
        self.suffix = ".onnx" if format == "onnx" else ".pt"
        self.model = DistillDQN("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **TINY)
        self.zip, self.zip_version = tmp_path / "student.zip", None

    def _set_version(self, version: int) -> None:
        self.model.q_net.q_net[-1].bias.data.fill_(float(version))

    def write(self, path: Path, version: int) -> None:
        if self.command:
            version = 0  # one input zip: the kills must land in the export's write, not in model.save()
        self._set_version(version)
        if self.command:
            if self.zip_version != version:  # the command's input, saved once per version: the export is under test
                self.model.save(self.zip)
                self.zip_version = version
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr):
                status = export_main([str(self.zip), "--format", self.format, "--out", str(path), "--force", "--check", "0"])
            if status == 2 and "[Errno" in stderr.getvalue():
                # The command reports a failed write as an exit status and a message naming the OS error.
                raise OSError(stderr.getvalue().strip())
            assert status == 0, stderr.getvalue()
        else:
            export(self.model, path, self.format)

    def check(self, path: Path) -> int:
        _, scores = load_exported(path)(np.zeros((1, 4), dtype=np.float32))
        self._set_version(0)
        with_zero_bias = self.model.q_net(self.model.q_net.obs_to_tensor(np.zeros((1, 4), dtype=np.float32))[0])
        return round(float(scores[0, 0] - with_zero_bias[0, 0].item()))


def _writers(tmp_path: Path) -> dict[str, Callable[[], Writer]]:
    return {
        "DistillDQN.save": lambda: ModelWriter(
            "DistillDQN.save",
            lambda: DistillDQN("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **TINY),
            DistillDQN.load,
        ),
        "PolicyDistill.save": lambda: ModelWriter(
            "PolicyDistill.save",
            lambda: PolicyDistill("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", distill_value_coef=0.0, **TINY),
            PolicyDistill.load,
        ),
        "save_replay_buffer": ReplayBufferWriter,
        "collect_teacher_dataset": DatasetWriter,
        "export() torchscript": lambda: ExportWriter("torchscript", False, tmp_path),
        "sb3-distill export onnx": lambda: ExportWriter("onnx", True, tmp_path),
    }


WRITERS = [
    "DistillDQN.save",
    "PolicyDistill.save",
    "save_replay_buffer",
    "collect_teacher_dataset",
    "export() torchscript",
    "sb3-distill export onnx",
]


def _rewrite_forever(writer: Writer, path: Path, started: Any) -> None:
    slow_disk()
    started.set()
    version = 1
    while True:
        writer.write(path, version)
        version += 1


def _kill_while_writing(writer: Writer, path: Path, seed: int) -> tuple[list[int], int]:
    """Kill a rewriting child N_KILLS times; return the version found after each kill and how many kills hit a write."""
    rng = random.Random(seed)
    versions, interrupted = [], 0
    for _ in range(N_KILLS):
        started = FORK.Event()
        child = FORK.Process(target=_rewrite_forever, args=(writer, path, started), daemon=True)
        child.start()
        assert started.wait(30), "the writing child did not start"
        time.sleep(rng.uniform(0.0, 1.2))
        child.kill()  # SIGKILL: no cleanup runs
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
        leftovers = list(path.parent.glob(f".{path.name}.*"))
        interrupted += bool(leftovers)  # a temporary file left behind: the kill landed inside a save
        for leftover in leftovers:
            leftover.unlink()
        versions.append(writer.check(path))  # raises if the file is not loadable
    return versions, interrupted


@pytest.mark.parametrize("name", WRITERS)
def test_sigkill_during_a_save_leaves_a_loadable_file(name: str, tmp_path: Path) -> None:
    writer = _writers(tmp_path)[name]()
    path = tmp_path / f"target{writer.suffix}"
    writer.write(path, 0)
    assert writer.check(path) == 0
    versions, interrupted = _kill_while_writing(writer, path, seed=0)
    print(f"{name}: {interrupted} of {N_KILLS} kills landed inside a save; versions found after the kills: {versions}")
    assert all(version >= 0 for version in versions)
    assert interrupted >= N_KILLS // 3, f"only {interrupted} of {N_KILLS} kills landed inside a save: the test is too weak"


def test_the_harness_breaks_sb3s_in_place_save(tmp_path: Path) -> None:
    """Control: SB3's own DQN.save writes in place, and the same kills leave unloadable files."""
    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=50, buffer_size=300, policy_kwargs=dict(net_arch=[16]))

    class PlainSave(Writer):
        def write(self, path: Path, version: int) -> None:
            model.num_timesteps = version
            model.save(path)

        def check(self, path: Path) -> int:
            return int(DQN.load(path).num_timesteps)

    writer, path = PlainSave(), tmp_path / "plain.zip"
    writer.write(path, 0)
    broken = 0
    rng = random.Random(0)
    for _ in range(N_KILLS):
        started = FORK.Event()
        child = FORK.Process(target=_rewrite_forever, args=(writer, path, started), daemon=True)
        child.start()
        assert started.wait(30)
        time.sleep(rng.uniform(0.0, 1.2))
        child.kill()
        child.join(10)
        try:
            writer.check(path)
        except Exception:
            broken += 1
            writer.write(path, 0)
    print(f"SB3's DQN.save: {broken} of {N_KILLS} kills left an unloadable file")
    assert broken >= 1


# ------------------------------------------------------------------------------------------------ full disk
def _write_on_a_full_disk(writer: Writer, path: Path, limit: int, errors: Any) -> None:
    # RLIMIT_FSIZE: the kernel refuses to grow any file past `limit` bytes (EFBIG), as a full disk does (ENOSPC).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        writer.write(path, 0)  # the same content again: only the write under test needs the disk
    except BaseException as error:
        errors.put((type(error).__name__, str(error), isinstance(error, OSError)))
    else:
        errors.put(None)


@pytest.mark.parametrize("name", WRITERS)
def test_full_disk_gives_a_clear_error_and_keeps_the_previous_file(name: str, tmp_path: Path) -> None:
    writer = _writers(tmp_path)[name]()
    path = tmp_path / f"target{writer.suffix}"
    writer.write(path, 0)
    before = path.read_bytes()
    errors = FORK.Queue()
    child = FORK.Process(target=_write_on_a_full_disk, args=(writer, path, min(512, len(before) // 2), errors))
    child.start()
    result = errors.get(timeout=60)
    child.join(30)
    assert result is not None, "the write succeeded on a full disk"
    kind, message, is_os_error = result
    assert is_os_error, f"{kind}: {message}"
    assert "Could not write" in message and str(path.name) in message and "the previous file is intact" in message
    assert path.read_bytes() == before
    assert writer.check(path) == 0
    assert not list(tmp_path.glob(f".{path.name}.*")), "the temporary file was left behind"


def test_full_disk_error_number_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk found when the data is flushed (ENOSPC at fsync, as delayed allocation reports it)."""
    import sb3_distill.common.files as files

    model = DistillDQN("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **TINY)
    path = tmp_path / "student.zip"
    model.save(path)
    before = path.read_bytes()

    def full_disk(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match=r"Could not write .*student\.zip \(No space left on device\); the previous") as error:
        model.save(path)
    assert error.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".student.zip.*"))


# ------------------------------------------------------------------------------------------------ leftovers
def _save_and_die(path: Path) -> None:
    """Start an atomic save of ``path``, write half of it, and be SIGKILLed (no cleanup can run)."""
    from sb3_distill.common.files import atomic_path

    with atomic_path(path) as temporary:
        temporary.write_bytes(b"half a model")
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_save_killed_mid_write_leaves_a_harmless_file_that_the_next_save_removes(tmp_path: Path) -> None:
    model = DistillDQN("MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", **TINY)
    run = tmp_path / "logs" / "distill_dqn" / "CartPole-v1_1"
    path = run / "CartPole-v1.zip"
    model.save(path)
    before = path.read_bytes()
    child = FORK.Process(target=_save_and_die, args=(path,))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL

    leftovers = list(run.glob(f".{path.name}.*"))
    assert len(leftovers) == 1 and leftovers[0].read_bytes() == b"half a model"
    assert leftovers[0].name.endswith(".tmp") and leftovers[0].name.startswith(".")
    # Harmless: the target is intact, and nothing that lists the folder's models sees the leftover
    assert path.read_bytes() == before
    assert sorted(run.glob("*.zip")) == [path] and sorted(run.glob("*.pkl")) == []
    assert load_teacher(run).source_path == path.resolve()
    # Cleaned: the next save to the same file removes it
    model.num_timesteps = 7
    model.save(path)
    assert not list(run.glob(f".{path.name}.*")) and DistillDQN.load(path).num_timesteps == 7


def test_leftover_removal_spares_saves_that_may_still_be_running(tmp_path: Path) -> None:
    """Only the files of ended processes of this host go: not this process's, a live one's, another host's."""
    import sb3_distill.common.files as files

    target = tmp_path / "model.zip"
    host = files._host()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    try:
        names = {
            "ended": f".model.zip.{host}-{ended.pid}.abc123de.tmp",
            "live": f".model.zip.{host}-{live.pid}.abc123de.tmp",
            "this process": f".model.zip.{host}-{os.getpid()}.abc123de.tmp",
            "other host": f".model.zip.{host}x-{ended.pid}.abc123de.tmp",
            "other target": f".other.zip.{host}-{ended.pid}.abc123de.tmp",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"partial")
        removed = files.remove_leftover_temporaries(target)
        assert removed == [tmp_path / names["ended"]]
        assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
            name for key, name in names.items() if key != "ended"
        )
    finally:
        live.kill()
        live.wait()
