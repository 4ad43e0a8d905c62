"""
What a tuning worker killed with SIGKILL leaves in an Optuna journal file: a measurement.

A worker writes trials to a journal as fast as it can (each trial: 2 parameters, a user attribute, 5 intermediate
values), and is SIGKILLed at a uniformly random moment 0.05-0.5 s after it is ready, KILLS times in a row. After each
kill we count what is left: the lock file of Optuna's default lock (``PATH.lock``, removed then, as Optuna's next
writer does after waiting 30 s), a half-written last line, the trials left ``RUNNING``; then the journal is opened
again and the running trials failed (``max_reopen_s``: the longest that took).

    python scripts/kill_journal_workers.py --kills 100 --lock optuna   # Optuna's default symlink lock
    python scripts/kill_journal_workers.py --kills 60 --lock flock     # sb3-distill's open_storage()
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState


def _open(path: str, lock: str) -> JournalStorage:
    if lock == "flock":
        from sb3_distill.zoo import open_storage

        return open_storage(path)  # type: ignore[return-value]
    return JournalStorage(JournalFileBackend(path))


def work(path: str, lock: str) -> None:
    """The worker: trials as fast as the journal takes them."""
    study = optuna.create_study(study_name="s", storage=_open(path, lock), load_if_exists=True)
    print("ready", flush=True)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.suggest_int("n", 1, 100)
        trial.set_user_attr("worker", os.getpid())
        for step in range(5):
            trial.report(x * step, step)
            time.sleep(0.005)
        return x

    study.optimize(objective, n_trials=1_000_000)


def measure(kills: int, lock: str, seed: int) -> dict[str, float]:
    """Kill a worker ``kills`` times; return the counts."""
    rng = random.Random(seed)
    if lock == "flock":
        import sb3_distill.zoo  # noqa: F401 (imported now, so that max_reopen_s does not time the import)
    path = str(Path(tempfile.mkdtemp(prefix="kill-journal-")) / "study.log")
    counts = {"kills": 0, "lock_left": 0, "half_line_left": 0, "running_left": 0, "max_reopen_s": 0.0}
    for _ in range(kills):
        worker = subprocess.Popen([sys.executable, __file__, "--work", path, "--lock", lock], stdout=subprocess.PIPE)
        assert worker.stdout is not None and worker.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.5))
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        worker.stdout.close()
        counts["kills"] += 1
        if os.path.lexists(path + ".lock"):
            counts["lock_left"] += 1
            os.remove(path + ".lock")  # what Optuna's next writer does, after waiting 30 s (its grace period)
        content = Path(path).read_bytes()
        counts["half_line_left"] += bool(content) and not content.endswith(b"\n")
        start = time.monotonic()
        study = optuna.load_study(study_name="s", storage=_open(path, lock))
        running = [trial.number for trial in study.trials if trial.state == TrialState.RUNNING]
        for number in running:
            study.tell(number, state=TrialState.FAIL)
        counts["max_reopen_s"] = max(counts["max_reopen_s"], round(time.monotonic() - start, 2))
        counts["running_left"] += len(running)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--lock", choices=["optuna", "flock"], default="flock")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.work:
        work(args.work, args.lock)
    else:
        print(measure(args.kills, args.lock, args.seed))


if __name__ == "__main__":
    main()
