"""Local processes against Ray on this machine: a compare grid's wall time, and a fault run.

Usage:  python benchmarks/bench_executors.py [--rounds 2] [--iters 100] [--hidden 64] [--cpus 1]
            [--out runs/cluster/bench] [--resume]

Trains the same grid (4 strategies x 2 seeds on 8gaussians, ``--iters`` generator
iterations each, MLP width ``--hidden``, one torch thread per run) with
``LocalProcessExecutor(jobs=cpus)`` and with ``RayExecutor`` on a local Ray instance of
``--cpus`` CPUs, in interleaved rounds
(the order alternates) so that slow phases of the shared machine hit both alike. The
grid's wall time is that of ``executor.run`` (the report is the same for both and not
timed); Ray's start (``ray.init``) is timed on its own. Ray's overhead per job is the
difference of the two grids' times over the number of jobs.

The fault run trains the grid once more on Ray and SIGKILLs one Ray worker once every
run has passed its first checkpoint; it then checks that every run ended ok and that its
metrics log and final summary equal those of the uninterrupted grid.

Each measurement is appended to ``<out>/results.jsonl`` as it ends; ``--resume`` skips
those already there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import time
from pathlib import Path

STRATEGIES = "clip,gp,gp-one-sided,fd"
SEEDS = [0, 1]


def grid(out: Path, iters: int, hidden: int):
    from lipgan.compare import plan
    from lipgan.runs import build_config

    shutil.rmtree(out, ignore_errors=True)
    base = build_config(
        None,
        {"iters": iters, "hidden": hidden, "threads": 1, "log_every": 20, "checkpoint_every": 20},
        check_options=False,
    )
    return plan.setup(base, plan.plan(STRATEGIES, [0.01]), out, seeds=SEEDS)


def timed(executor, setup, on_event=lambda event: None) -> tuple[float, dict]:
    start = time.perf_counter()
    outcomes = executor.run(setup.jobs, on_event)
    return time.perf_counter() - start, {n: o.status for n, o in outcomes.items()}


def ray_workers() -> list[int]:
    """This process's Ray workers running a training task (children of the raylet that
    ray.init started here; Ray titles a worker by the task's function)."""

    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::_train_task"):
                    if parent(parent(int(entry.name))) == os.getpid():
                        pids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def run_fault(ray_executor, out: Path, reference: Path, iters: int, hidden: int) -> dict:
    from lipgan.runio import RunFolder

    setup = grid(out, iters, hidden)
    latest: dict[str, int] = {}
    killed: list[tuple[int, dict[str, int]]] = []

    def kill_one_worker(event) -> None:
        latest[event.name] = 10**9 if event.outcome is not None else event.iteration
        running = [i for i in latest.values() if i < 10**9]
        if not killed and running and min(running) > 20:  # past a checkpoint each
            workers = ray_workers()
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                killed.append((workers[0], dict(latest)))

    seconds, statuses = timed(ray_executor, setup, kill_one_worker)

    def same(name: str) -> bool:
        ours, theirs = RunFolder(out / "runs" / name), RunFolder(reference / "runs" / name)
        final = [
            {k: v for k, v in json.loads(f.summary.read_text()).items() if "seconds" not in k}
            for f in (ours, theirs)
        ]
        return ours.metrics.read_text() == theirs.metrics.read_text() and final[0] == final[1]

    return {
        "kind": "fault",
        "seconds": round(seconds, 2),
        "killed_at": killed[0][1] if killed else None,
        "statuses": statuses,
        "equal_to_uninterrupted": {name: same(name) for name in statuses},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/cluster/bench"))
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "results.jsonl"
    done = (
        [json.loads(line) for line in log.read_text().splitlines()]
        if args.resume and log.exists()
        else []
    )
    if not args.resume:
        log.write_text("")

    import ray
    import torch

    from lipgan.executors import LocalProcessExecutor
    from lipgan.executors.ray_executor import RayExecutor, _normal_priority_workers

    torch.set_num_threads(1)
    for attempt in range(3):  # on an overloaded machine the raylet can miss Ray's 30 s
        start = time.perf_counter()
        try:
            with _normal_priority_workers():  # as RayExecutor starts its own instance
                ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    init_seconds = time.perf_counter() - start
    executors = {"local": LocalProcessExecutor(args.cpus, 1), "ray": RayExecutor(threads=1)}

    def record(entry: dict) -> None:
        done.append(entry)
        with log.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
        print(json.dumps(entry), flush=True)

    if not any(d["kind"] == "ray_init" for d in done):
        record({"kind": "ray_init", "seconds": round(init_seconds, 2)})
    for round_index in range(args.rounds):
        order = ["local", "ray"] if round_index % 2 == 0 else ["ray", "local"]
        for kind in order:
            if any(d["kind"] == kind and d["round"] == round_index for d in done):
                continue
            setup = grid(args.out / f"{kind}-{round_index}", args.iters, args.hidden)
            seconds, statuses = timed(executors[kind], setup)
            record({"kind": kind, "round": round_index, "seconds": round(seconds, 2),
                    "jobs": len(setup.jobs), "statuses": statuses})  # fmt: skip
    if not any(d["kind"] == "fault" for d in done):
        fault = run_fault(
            executors["ray"], args.out / "fault", args.out / "local-0", args.iters, args.hidden
        )
        record(fault)
    summary = {}
    for kind in ("local", "ray"):
        times = [d["seconds"] for d in done if d["kind"] == kind]
        summary[kind] = (statistics.mean(times), statistics.stdev(times) if len(times) > 1 else 0)
    jobs = len(STRATEGIES.split(",")) * len(SEEDS)
    print(
        f"local {summary['local'][0]:.1f} ± {summary['local'][1]:.1f} s, ray "
        f"{summary['ray'][0]:.1f} ± {summary['ray'][1]:.1f} s over {args.rounds} rounds; "
        f"ratio {summary['ray'][0] / summary['local'][0]:.3f}; overhead per job "
        f"{(summary['ray'][0] - summary['local'][0]) / jobs:.2f} s; ray.init {init_seconds:.1f} s"
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
