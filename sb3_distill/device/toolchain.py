"""
Compilers for exported C: the host's (a cached shared library, called through ctypes) and a Cortex-M4 cross-compiler
(flash and RAM in bytes).
"""

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sb3_distill.device.c_code import MARKER
from sb3_distill.device.network import ExportError

#: Flags of the host build (C99: no contraction of a*b+c into fused multiply-adds, so results match the numpy model)
HOST_FLAGS = ["-std=c99", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"]
#: The cross-compiler and its flags: a Cortex-M4F (single-precision FPU, hard-float ABI), optimized for size
ARM_GCC = "arm-none-eabi-gcc"
ARM_FLAGS = [
    "-mcpu=cortex-m4",
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
    "-Os",
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffunction-sections",
    "-fdata-sections",
    "-fstack-usage",
]
HOST_HELP = (
    "Install one (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; macOS: xcode-select --install) "
    "or point the environment variable CC at it."
)
ARM_HELP = (
    "Install the Arm GNU toolchain: Debian/Ubuntu: apt-get install gcc-arm-none-eabi (make arm-toolchain does it); "
    "Fedora: dnf install arm-none-eabi-gcc-cs arm-none-eabi-newlib; macOS: brew install --cask gcc-arm-embedded."
)


@dataclass
class ExportedC:
    """
    What the header of an exported C policy declares.

    :param prefix: the symbol prefix
    :param quantization: ``float32``, ``int8`` or ``int4``
    :param obs_dim: flattened observation length
    :param n_scores: number of scores
    :param action_dim: action dimension (1 for discrete)
    :param discrete: whether the entry point returns a greedy action
    """

    prefix: str
    quantization: str
    obs_dim: int
    n_scores: int
    action_dim: int
    discrete: bool


def read_header(source: Path) -> ExportedC:
    """
    :param source: ``NAME.c`` (its ``NAME.h`` must be beside it)
    :return: what the header declares
    :raises ~sb3_distill.errors.ExportError: when the files are missing or were not written by the C export
    """
    header = source.with_suffix(".h")
    if not source.exists() or not header.exists():
        raise ExportError(f"{source} and {header} must both exist (export them with --format c).")
    text = header.read_text()
    first = re.match(re.escape(MARKER) + r" prefix=(\w+) quantization=(\w+) \*/", text)
    if first is None:
        raise ExportError(f"{header} was not written by sb3-distill's C export.")
    prefix, quantization = first.group(1), first.group(2)

    def define(name: str) -> int:
        match = re.search(rf"#define {prefix.upper()}_{name} (\d+)", text)
        if match is None:
            raise ExportError(f"{header} lacks {prefix.upper()}_{name}: export it again.")
        return int(match.group(1))

    return ExportedC(
        prefix, quantization, define("OBS_DIM"), define("N_SCORES"), define("ACTION_DIM"), bool(define("DISCRETE"))
    )


def host_compiler() -> str:
    """
    :return: the host C compiler: ``$CC``, else ``cc``, ``gcc`` or ``clang`` on PATH
    :raises ~sb3_distill.errors.ExportError: naming the package to install
    """
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found is not None:
            return found
    raise ExportError(f"No C compiler found (tried {', '.join(candidates)}). {HOST_HELP}")


def cache_folder() -> Path:
    """
    :return: where compiled policies are kept (``$SB3_DISTILL_CACHE/c``, else ``$XDG_CACHE_HOME/sb3-distill/c``)
    """
    root = os.environ.get("SB3_DISTILL_CACHE")
    if root:
        return Path(root) / "c"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sb3-distill" / "c"


def _act_call(info: ExportedC, obs: str, action: str, scores: str) -> str:
    """The C statement that acts on ``obs``: a discrete entry point returns the action, a continuous one writes it."""
    if info.discrete:
        return f"{action} = {info.prefix}_act({obs}, {scores});"
    return f"{info.prefix}_act({obs}, {action}, {scores});"


def _batch_wrapper(info: ExportedC) -> str:
    # Loops in C over a batch, so that Python's call overhead is paid once per batch (not part of the export).
    p = info.prefix
    action = "actions[k]" if info.discrete else f"actions + k * {info.action_dim}"
    call = _act_call(info, f"obs + k * {info.obs_dim}", action, f"scores + k * {info.n_scores}")
    action_type = "int32_t" if info.discrete else "float"
    return (
        f'#include "{p}.h"\n'
        f"void sb3_distill_batch(int32_t n, const float *obs, {action_type} *actions, float *scores);\n"
        f"void sb3_distill_batch(int32_t n, const float *obs, {action_type} *actions, float *scores)\n{{\n"
        f"    int32_t k;\n    for (k = 0; k < n; ++k) {{ {call} }}\n}}\n"
    )


def compile_host(source: Path) -> tuple[Path, ExportedC]:
    """
    Compile an exported policy for this machine (once: the library is cached by the hash of sources and compiler).

    :param source: ``NAME.c``
    :return: the shared library and what the header declares
    """
    info = read_header(source)
    compiler = host_compiler()
    wrapper = _batch_wrapper(info)
    key = hashlib.sha256()
    for part in (source.read_bytes(), source.with_suffix(".h").read_bytes(), wrapper.encode(), compiler.encode()):
        key.update(part)
    key.update(" ".join(HOST_FLAGS).encode())
    library = cache_folder() / f"{info.prefix}-{key.hexdigest()[:20]}.so"
    if library.exists():
        return library, info
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as work:
        folder = Path(work)
        shutil.copy(source, folder / f"{info.prefix}.c")
        shutil.copy(source.with_suffix(".h"), folder / f"{info.prefix}.h")
        (folder / "batch.c").write_text(wrapper)
        command = [compiler, *HOST_FLAGS, "-o", str(folder / "policy.so"), f"{info.prefix}.c", "batch.c", "-lm"]
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ExportError(f"Compiling {source} failed ({' '.join(command)}):\n{result.stderr}")
        os.replace(folder / "policy.so", library)  # atomic: another process may compile the same policy
    return library, info


def load_c(source: str | Path) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """
    Compile (or take from the cache) an exported C policy and call it on numpy observations.

    :param source: ``NAME.c``
    :return: ``f(obs_batch) -> (actions, scores)``; its attribute ``act_one`` calls the entry point on one
        observation (for latency measurements)
    """
    library_path, info = compile_host(Path(source))
    library = ctypes.CDLL(str(library_path))
    batch = library.sb3_distill_batch
    # Addresses as plain integers: ndarray.ctypes.data_as costs microseconds per array, more than a small policy.
    batch.argtypes = [ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    batch.restype = None
    action_shape: tuple[int, ...] = () if info.discrete else (info.action_dim,)
    action_dtype = np.int32 if info.discrete else np.float32

    def run_c(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = np.ascontiguousarray(obs, dtype=np.float32).reshape(len(obs), -1)
        if flat.shape[1] != info.obs_dim:
            raise ValueError(f"Expected observations of {info.obs_dim} numbers, got shape {np.shape(obs)}.")
        n = len(flat)
        actions = np.empty((n, *action_shape), dtype=action_dtype)
        scores = np.empty((n, info.n_scores), dtype=np.float32)
        batch(n, flat.ctypes.data, actions.ctypes.data, scores.ctypes.data)
        return (actions.astype(np.int64) if info.discrete else actions), scores

    run_c.library = library  # type: ignore[attr-defined]
    run_c.info = info  # type: ignore[attr-defined]
    return run_c


#: Cross-compiler and emulator of the ARM parity check (32-bit Arm Linux, hard float: a Cortex-A core under qemu-user)
ARM_LINUX_GCC, QEMU_ARM = "arm-linux-gnueabihf-gcc", "qemu-arm"
ARM_LINUX_FLAGS = ["-std=c99", "-O2", "-static", "-Wall", "-Wextra", "-Werror"]
QEMU_HELP = (
    "Install the Arm Linux cross-compiler and the user-mode emulator: Debian/Ubuntu: apt-get install "
    "gcc-arm-linux-gnueabihf qemu-user (make arm-toolchain does it); Fedora: dnf install gcc-arm-linux-gnu qemu-user."
)


def _arm_main(info: ExportedC) -> str:
    # Reads raw float32 observations from stdin, writes each action and its scores to stdout (both little-endian).
    p, upper = info.prefix, info.prefix.upper()
    action = "int32_t action;" if info.discrete else f"float action[{upper}_ACTION_DIM];"
    call = _act_call(info, "obs", "action", "scores")
    return (
        f'#include <stdio.h>\n#include "{p}.h"\n\nint main(void)\n{{\n'
        f"    float obs[{upper}_OBS_DIM], scores[{upper}_N_SCORES];\n    {action}\n"
        f"    while (fread(obs, sizeof(float), {upper}_OBS_DIM, stdin) == {upper}_OBS_DIM) {{\n"
        f"        {call}\n"
        f"        fwrite({'&' if info.discrete else ''}action, sizeof action, 1, stdout);\n"
        f"        fwrite(scores, sizeof(float), {upper}_N_SCORES, stdout);\n"
        "    }\n    return 0;\n}\n"
    )


def run_on_arm(source: str | Path, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Cross-compile an exported policy for 32-bit Arm Linux (``arm-linux-gnueabihf-gcc -O2 -static``) and run it under
    ``qemu-arm`` on observations: the parity check of the C on an ARM core (the exported code is the same that
    :func:`cortex_m4_size` builds for a Cortex-M4).

    :param source: ``NAME.c``
    :param obs: raw observations, shape ``(n, *obs_shape)``
    :return: ``(actions, scores)`` as :func:`load_c`'s policy returns them
    :raises ~sb3_distill.errors.ExportError: when the cross-compiler or the emulator is missing (naming the packages)
    """
    source = Path(source)
    info = read_header(source)
    tools = {name: shutil.which(name) for name in (ARM_LINUX_GCC, QEMU_ARM)}
    missing = [name for name, found in tools.items() if found is None]
    if missing:
        raise ExportError(f"{' and '.join(missing)} not installed. {QEMU_HELP}")
    flat = np.ascontiguousarray(obs, dtype=np.float32).reshape(len(obs), -1)
    if flat.shape[1] != info.obs_dim:
        raise ValueError(f"Expected observations of {info.obs_dim} numbers, got shape {np.shape(obs)}.")
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        shutil.copy(source, folder / f"{info.prefix}.c")
        shutil.copy(source.with_suffix(".h"), folder / f"{info.prefix}.h")
        (folder / "main.c").write_text(_arm_main(info))
        command = [str(tools[ARM_LINUX_GCC]), *ARM_LINUX_FLAGS, "main.c", f"{info.prefix}.c", "-o", "policy", "-lm"]
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ExportError(f"Cross-compiling {source} failed ({' '.join(command)}):\n{result.stderr}")
        run = subprocess.run([str(tools[QEMU_ARM]), "policy"], cwd=folder, input=flat.tobytes(), capture_output=True)
        if run.returncode != 0:
            raise ExportError(f"{QEMU_ARM} failed on {source}: {run.stderr.decode(errors='replace')}")
    action_fields = 1 if info.discrete else info.action_dim
    record = np.dtype([("action", "<i4" if info.discrete else "<f4", (action_fields,)), ("scores", "<f4", (info.n_scores,))])
    out = np.frombuffer(run.stdout, dtype=record)
    if len(out) != len(flat):
        raise ExportError(f"{QEMU_ARM} returned {len(out)} actions for {len(flat)} observations.")
    actions = out["action"][:, 0].astype(np.int64) if info.discrete else out["action"].copy()
    return actions, out["scores"].copy()


@dataclass
class TargetSize:
    """
    Bytes of a policy on the target, from the linked image of its entry point (libgcc / libm included).

    :param text: machine code (``.text``)
    :param rodata: constants: weights, tables (``.rodata``)
    :param data: initialized variables (``.data``)
    :param bss: zeroed variables (``.bss``)
    :param stack: the entry point's stack (``-fstack-usage``: the largest frame of its own functions)
    """

    text: int
    rodata: int
    data: int
    bss: int
    stack: int

    @property
    def flash(self) -> int:
        """text + rodata + data (initial values are stored in flash)."""
        return self.text + self.rodata + self.data

    @property
    def ram(self) -> int:
        """data + bss + stack."""
        return self.data + self.bss + self.stack


def cortex_m4_size(source: str | Path) -> TargetSize:
    """
    Cross-compile an exported policy for a Cortex-M4F with ``-Wall -Wextra -Werror`` and measure it.

    The entry point is linked alone (``--gc-sections``, no start-up code), so that the image holds exactly what it
    needs: its code, its constants, and the library routines it calls (``tanhf``, 64-bit shifts).

    :param source: ``NAME.c``
    :return: its sizes in bytes
    :raises ~sb3_distill.errors.ExportError: when ``arm-none-eabi-gcc`` is missing (naming its package) or the build fails
    """
    source = Path(source)
    info = read_header(source)
    compiler = shutil.which(ARM_GCC)
    if compiler is None:
        raise ExportError(f"{ARM_GCC} is not installed. {ARM_HELP}")
    size_tool = shutil.which("arm-none-eabi-size")
    if size_tool is None:
        raise ExportError(f"arm-none-eabi-size is not installed. {ARM_HELP}")
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        shutil.copy(source, folder / f"{info.prefix}.c")
        shutil.copy(source.with_suffix(".h"), folder / f"{info.prefix}.h")
        compile_command = [compiler, *ARM_FLAGS, "-c", f"{info.prefix}.c", "-o", "policy.o"]
        link_command = [
            compiler,
            *ARM_FLAGS[:5],
            "-nostartfiles",
            "--specs=nano.specs",
            "--specs=nosys.specs",
            "-Wl,--gc-sections",
            f"-Wl,--entry={info.prefix}_act",
            "policy.o",
            "-lm",
            "-o",
            "policy.elf",
        ]
        for command in (compile_command, link_command):
            result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise ExportError(f"Cross-compiling {source} failed ({' '.join(command)}):\n{result.stderr}")
        sections = subprocess.run([size_tool, "-A", "policy.elf"], cwd=folder, capture_output=True, text=True, check=True)
        sizes: dict[str, int] = {}
        for line in sections.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
                sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
        stack = 0
        for line in (folder / "policy.su").read_text().splitlines():
            fields = line.split("\t")
            if len(fields) >= 2 and fields[1].strip().isdigit():
                stack += int(fields[1])  # the entry point and its helpers (a chain at most two deep): their sum
    return TargetSize(
        text=sizes.get(".text", 0),
        rodata=sizes.get(".rodata", 0),
        data=sizes.get(".data", 0),
        bss=sizes.get(".bss", 0),
        stack=stack,
    )
