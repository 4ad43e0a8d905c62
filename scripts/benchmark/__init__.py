"""
The benchmarks behind docs/benchmarks.md: distilled students vs their teachers vs learning from scratch, on the same
machine in one run, every run in a fresh process.

::

    python -m scripts.benchmark --out runs/bench --quick                                   # classic, < 10 min on 2 cores
    python -m scripts.benchmark --out runs/bench-full --jobs 2                             # the classic suite's full run
    python -m scripts.benchmark --suite mujoco --zoo-dir ../rl-trained-agents --out runs/mujoco --jobs 1

Writes ``results.json`` (one row per env × method × seed, a ``summary`` per env × method, the teachers, the suite's
probes), ``benchmarks.md`` (tables) and the plot.

Layout: ``suites/`` (one file per suite: what to run), ``suite.py`` (what a suite declares, with the defaults),
``runners.py`` (the teacher and training jobs, the process pool), ``measure.py`` (evaluations, sizes, latency,
memory, gradient-step time), ``probes.py`` (DistillDQN's cost probes), ``stats.py`` (normalized scores, IQM and
bootstrap CIs, summaries), ``report.py`` (markdown and plot), ``cli.py`` (the command line). A new suite is one file
in ``suites/`` that subclasses :class:`benchmark.suite.Suite`.
"""
