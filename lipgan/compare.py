"""``lipgan compare``: every strategy on the same data, seed and budget, then a report.

Each strategy trains through the ordinary path (``runs.prepare`` + ``engine.train``) into
a normal run folder ``<out>/runs/<name>/``; nothing here forks the loop. After training,
every run is read back from its folder (metrics.jsonl, timing.jsonl, checkpoints/last.pt)
and examined with ``lipgan.diagnostics``; ``lipgan.report`` writes the table, figures,
report.html, report.md and results.json.

The critic-only mode (paper, Fig. 2) builds each strategy's parts with
``engine.build_parts`` and calls ``engine.critic_update`` with a fixed generator stand-in
(real data plus Gaussian noise), so the critic is trained to optimality against a
distribution that never moves.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import queue as queue_module
import resource
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipgan import constraints as registry
from lipgan import data as datasets
from lipgan import diagnostics, distributed, engine, runs
from lipgan.config import TrainConfig, fold_shorthands, replace, strategy_param
from lipgan.constraints.base import BatchRandom
from lipgan.errors import ConfigError, DivergenceError, LipganError
from lipgan.runio import RunFolder, default_folder

DEFAULT_CONSTRAINTS = "clip,gp,gp-one-sided,fd,none"
DEFAULT_CLIP_VALUES = "0.1,0.01,0.001"
QUALITY_KEYS = ("quality/w1", "quality/frechet", "quality/js4")
"""The headline quality metric: the first one a run logs (all are lower-is-better)."""
DIAGNOSTIC_SAMPLES = 512
MEMORY_NOTE = (
    "peak resident memory (MiB) of the process while the run trained: the child process's "
    "ru_maxrss with --jobs > 1; with --jobs 1 the Linux high-water mark VmHWM, reset before "
    "each run through /proc/self/clear_refs (the process-wide ru_maxrss where that is "
    "unavailable, then an upper bound)"
)


# --- what to run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One strategy in the comparison: a run name and what it trains with."""

    name: str
    """'gp', or 'clip@0.01' for one clipping bound."""
    constraint: str
    clip_value: float | None = None


def plan(constraints: str, clip_values: list[float] | None) -> list[Entry]:
    """The runs for ``--constraints`` and ``--clip-values``.

    A strategy that clips runs once per clip value (``clip@0.1`` ...), so the per-layer
    gradient figure shows the paper's three bounds next to the penalties.
    """
    specs = [s.strip() for s in constraints.split(",")]
    if not any(specs) or any(not s for s in specs):
        raise ConfigError(
            f"--constraints {constraints!r} has an empty name; write e.g. 'clip,gp,none'"
        )
    entries: list[Entry] = []
    for spec in specs:
        infos = registry.parse(spec)  # unknown names raise with the list of valid ones
        clips = any("c" in info.params for info in infos)
        if clips and clip_values:
            for c in clip_values:
                if not (math.isfinite(c) and c > 0):
                    raise ConfigError(f"--clip-values must all be > 0, got {c:g}")
                entries.append(Entry(f"{spec}@{c:g}", spec, c))
        else:
            entries.append(Entry(spec, spec))
    names = [e.name for e in entries]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"--constraints lists {duplicate!r} twice; name each strategy once")
    return entries


@dataclass
class CompareSetup:
    """A validated comparison: the shared config, the runs, and where it all goes."""

    base: TrainConfig
    """Validated; its constraint is replaced per entry."""
    entries: list[Entry]
    out: Path
    jobs: int = 1
    threshold: float | None = None
    """Quality threshold for 'steps/seconds to threshold' (None: 2x the W1 noise floor)."""
    critic_only: bool = False
    noise_std: float = 1.0
    """Critic-only: std of the Gaussian noise added to real data for the fixed generator."""
    tensorboard: bool = False
    command: str = ""
    threads: int | None = None
    """torch CPU threads per run (None: all cores / jobs)."""
    prepared: dict[str, runs.PreparedRun] = field(default_factory=dict)

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"


def default_out(config: TrainConfig, critic_only: bool = False) -> Path:
    kind = "critic-only" if critic_only else "compare"
    return default_folder("reports", kind, config.data, config.seed)


def setup(
    base: TrainConfig,
    entries: list[Entry],
    out: Path | None,
    *,
    overwrite: bool = False,
    jobs: int = 1,
    threshold: float | None = None,
    critic_only: bool = False,
    noise_std: float = 1.0,
    tensorboard: bool = False,
    command: str = "",
    threads: int | None = None,
) -> CompareSetup:
    """Check the options, claim the output folder and prepare every run folder."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"--threshold must be > 0, got {threshold:g}")
    if not (math.isfinite(noise_std) and noise_std > 0):
        raise ConfigError(f"--noise-std must be > 0, got {noise_std:g}")
    if tensorboard:
        from lipgan.tensorboard import require_tensorboard

        require_tensorboard()
    out = Path(out) if out is not None else default_out(base, critic_only)
    _claim(out, overwrite)
    result = CompareSetup(
        base, entries, out, jobs, threshold, critic_only, noise_std, tensorboard, command, threads
    )
    if critic_only:
        data = datasets.load_for(base)
        for entry in entries:  # resolve now so a bad combination fails before any work
            engine.resolve(_entry_config(base, entry, out), data.family)
        return result
    for entry in entries:
        result.prepared[entry.name] = runs.prepare(_entry_config(base, entry, out))
    return result


def _entry_config(base: TrainConfig, entry: Entry, out: Path) -> TrainConfig:
    options = fold_shorthands(entry.constraint, clip_value=entry.clip_value)
    return replace(
        base,
        constraint=entry.constraint,
        constraint_options={**base.constraint_options, **options},
        out=str(out / "runs" / entry.name),
    )


def _claim(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; choose a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"output folder {out} already exists and is not empty; pass --overwrite to "
                "replace it or choose another --out"
            )
        if not ((out / "results.json").exists() or (out / "runs").is_dir()):
            raise ConfigError(
                f"--overwrite refused: {out} is not a lipgan compare folder (no results.json "
                "or runs/); choose another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


# --- training every strategy -------------------------------------------------------------


@dataclass
class Event:
    """Progress of one run, as the display needs it."""

    name: str
    iteration: int
    total: int
    metrics: dict[str, float] | None = None
    status: str | None = None
    """Set once, when the run has ended: 'ok', 'diverged' or 'failed: ...'."""


@dataclass
class Outcome:
    status: str
    peak_mib: float | None
    message: str = ""


def _reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib(reset_worked: bool) -> float:
    if reset_worked:
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _train_one(
    config: TrainConfig,
    run_dir: Path,
    data: datasets.DataSource | None,
    report: Callable[[engine.Progress], None],
    should_stop: Callable[[], int | None] | None,
    tensorboard_dir: Path | None,
) -> tuple[str, str]:
    """Train one run; a diverged or failed run is recorded, not fatal to the compare."""
    logger = None
    if tensorboard_dir is not None:
        from lipgan.tensorboard import TensorBoardLogger

        logger = TensorBoardLogger(tensorboard_dir)
    try:
        engine.train(
            config, run_dir, data=data, callbacks=[logger] if logger else [],
            on_progress=report, should_stop=should_stop,
        )  # fmt: skip
        return "ok", ""
    except engine.Interrupted:
        raise
    except DivergenceError as exc:
        return "diverged", str(exc)
    except LipganError as exc:
        return "failed", str(exc)
    finally:
        if logger is not None:
            logger.close()


def _child(
    config: TrainConfig,
    run_dir: Path,
    name: str,
    events: Any,
    threads: int,
    tensorboard_dir: Path | None,
) -> None:
    """Entry point of a --jobs worker process (spawned: nothing shared but the queue)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
    torch.set_num_threads(threads)

    def report(progress: engine.Progress) -> None:
        events.put(("progress", name, progress.iteration, progress.total, progress.metrics))

    try:
        status, message = _train_one(config, run_dir, None, report, None, tensorboard_dir)
    except Exception as exc:  # report, never hang the parent
        status, message = "failed", f"{type(exc).__name__}: {exc}"
    events.put(("done", name, status, message, _peak_rss_mib(False)))


def train_all(
    compare: CompareSetup,
    on_event: Callable[[Event], None],
    should_stop: Callable[[], int | None] | None = None,
) -> dict[str, Outcome]:
    """Train every entry, one after another (jobs 1) or in worker processes."""
    tensorboard_root = compare.out / "tensorboard" if compare.tensorboard else None
    if compare.jobs == 1:
        with _threads(compare.threads):
            return _train_sequential(compare, on_event, should_stop, tensorboard_root)
    return _train_parallel(compare, on_event, should_stop, tensorboard_root)


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count for a block (unchanged when None)."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_sequential(
    compare: CompareSetup,
    on_event: Callable[[Event], None],
    should_stop: Callable[[], int | None] | None,
    tensorboard_root: Path | None,
) -> dict[str, Outcome]:
    """One run after another in this process (peak memory via VmHWM resets)."""
    outcomes = {}
    for entry in compare.entries:
        prepared = compare.prepared[entry.name]
        total = prepared.config.iters

        def report(progress: engine.Progress, name: str = entry.name) -> None:
            on_event(Event(name, progress.iteration, progress.total, progress.metrics))

        reset = _reset_peak_rss()
        status, message = _train_one(
            prepared.config,
            prepared.run_dir,
            prepared.data,
            report,
            should_stop,
            None if tensorboard_root is None else tensorboard_root / entry.name,
        )
        outcomes[entry.name] = Outcome(status, _peak_rss_mib(reset), message)
        on_event(Event(entry.name, total, total, status=status))
    return outcomes


def _train_parallel(
    compare: CompareSetup,
    on_event: Callable[[Event], None],
    should_stop: Callable[[], int | None] | None,
    tensorboard_root: Path | None,
) -> dict[str, Outcome]:
    context = mp.get_context("spawn")
    events = context.Queue()
    threads = compare.threads or max(1, (os.cpu_count() or 1) // compare.jobs)
    waiting = list(compare.entries)
    running: dict[str, Any] = {}
    outcomes: dict[str, Outcome] = {}
    totals = {e.name: compare.prepared[e.name].config.iters for e in compare.entries}
    try:
        while waiting or running:
            while waiting and len(running) < compare.jobs:
                entry = waiting.pop(0)
                prepared = compare.prepared[entry.name]
                tb = None if tensorboard_root is None else tensorboard_root / entry.name
                process = context.Process(
                    target=_child,
                    args=(prepared.config, prepared.run_dir, entry.name, events, threads, tb),
                    daemon=True,
                )
                process.start()
                running[entry.name] = process
            signum = should_stop() if should_stop is not None else None
            if signum is not None:
                raise engine.Interrupted(
                    f"compare stopped; finished runs are in {compare.runs_dir}",
                    exit_code=128 + signum,
                )
            try:
                message = events.get(timeout=0.5)
            except queue_module.Empty:
                for name, process in list(running.items()):
                    if not process.is_alive() and process.exitcode not in (0, None):
                        running.pop(name)
                        status = f"worker exited with code {process.exitcode}"
                        outcomes[name] = Outcome("failed", None, status)
                        on_event(Event(name, totals[name], totals[name], status="failed"))
                continue
            if message[0] == "progress":
                _, name, iteration, total, metrics = message
                on_event(Event(name, iteration, total, metrics))
            else:
                _, name, status, text, peak = message
                running.pop(name).join()
                outcomes[name] = Outcome(status, peak, text)
                on_event(Event(name, totals[name], totals[name], status=status))
    finally:
        for process in running.values():
            process.terminate()
            process.join()
    return {e.name: outcomes[e.name] for e in compare.entries}


# --- reading the runs back -------------------------------------------------------------------


def read_timing(run_dir: Path) -> list[dict[str, Any]]:
    path = RunFolder(run_dir).timing
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def quality_key(records: list[dict[str, Any]]) -> str | None:
    """The first of quality/w1, quality/frechet, quality/js4 that the run logged."""
    for key in QUALITY_KEYS:
        if any(key in r for r in records):
            return key
    return None


def threshold_for(records: list[dict[str, Any]], key: str | None, given: float | None):
    """The user's threshold, else 2x the W1 noise floor (None for other metrics)."""
    if given is not None:
        return given
    floors = [r["quality/w1_floor"] for r in records if "quality/w1_floor" in r]
    if key == "quality/w1" and floors:
        return round(2 * floors[-1], 8)
    return None


@dataclass
class RunResult:
    """One strategy's row, diagnostics and curves."""

    entry: Entry
    row: dict[str, Any]
    critic: diagnostics.CriticReport | None
    curves: dict[str, tuple[list[float], list[float], list[float]]]
    """metric -> (steps, seconds, values)."""
    panel: tuple[np.ndarray, np.ndarray, Any] | None = None
    """(real, fake, critic) for the points figure."""
    last_sample: Path | None = None


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.12g}") if math.isfinite(value) else None
    return value


def examine_run(
    run_dir: Path,
    entry: Entry,
    outcome: Outcome | None = None,
    threshold: float | None = None,
) -> RunResult:
    """Everything the report shows about one finished (or diverged) run folder."""
    folder = RunFolder(run_dir)
    records = folder.read_metrics()
    timing = {t["step"]: t for t in read_timing(run_dir)}
    key = quality_key(records)
    limit = threshold_for(records, key, threshold)
    curves: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for metric in filter(None, (key, "wasserstein/estimate")):
        points = [r for r in records if metric in r and r["step"] in timing]
        curves[metric] = (
            [r["step"] for r in points],
            [timing[r["step"]]["seconds"] for r in points],
            [r[metric] if r[metric] is not None else float("nan") for r in points],
        )
    values = [r[key] for r in records if key and r.get(key) is not None]
    finite = [v for v in values if math.isfinite(v)]
    reached = next(
        (r for r in records if limit is not None and key and (r.get(key) or math.inf) <= limit),
        None,
    )
    summary = json.loads(folder.summary.read_text("utf-8")) if folder.summary.exists() else {}
    last_time = timing[max(timing)] if timing else None
    if "seconds_per_iter" in summary:
        per_step = summary["seconds_per_iter"]
    elif last_time is not None:
        per_step = last_time["seconds"] / max(last_time["step"], 1)
    else:
        per_step = None
    row: dict[str, Any] = {
        "name": entry.name,
        "constraint": entry.constraint,
        "status": outcome.status if outcome else ("ok" if summary else "incomplete"),
        "quality_metric": key,
        "final_quality": values[-1] if values else None,
        "best_quality": min(finite) if finite else None,
        "threshold": limit,
        "steps_to_threshold": reached["step"] if reached else None,
        "seconds_to_threshold": timing[reached["step"]]["seconds"]
        if reached and reached["step"] in timing
        else None,
        "seconds_per_step": per_step,
        "final_w_estimate": records[-1].get("wasserstein/estimate") if records else None,
        "peak_memory_mib": outcome.peak_mib if outcome else None,
    }
    if records and "quality/modes" in records[-1]:
        row["modes"] = records[-1]["quality/modes"]

    critic_report = None
    panel = None
    try:
        generator, critic, state = runs.load_generator(run_dir)
    except LipganError:
        generator = critic = state = None
    config = None
    if state is not None:
        config = TrainConfig.from_dict(state["config"], source=f"{run_dir} config")
    if generator is not None and critic is not None and config is not None:
        data = datasets.load_for(config)
        n = min(config.eval_samples, DIAGNOSTIC_SAMPLES)
        rand = BatchRandom(torch.Generator().manual_seed(config.seed + 11))
        real = data.draw(rand, n)
        with torch.no_grad():
            fake = generator(rand.normal(n, config.z_dim)).to(real.dtype)
        clip = strategy_param(config, "c")
        critic_report = diagnostics.examine_critic(critic, real, fake, config.seed, clip)
        if data.family == "points":
            panel = (real.numpy(), fake.numpy(), critic)
    if critic_report is not None:
        numbers = critic_report.numbers()
        row.update(
            grad_norm_interp_mean=numbers["grad_norm_interp_mean"],
            grad_norm_interp_std=numbers["grad_norm_interp_std"],
            lipschitz_estimate=numbers["lipschitz_estimate"],
            weights_at_bound=numbers["weights_at_bound"],
        )
    samples = sorted(folder.samples.glob("step_*.*")) if folder.samples.exists() else []
    return RunResult(
        entry,
        {k: _clean(v) for k, v in row.items()},
        critic_report,
        curves,
        panel,
        samples[-1] if samples else None,
    )


# --- critic-only mode (paper, Fig. 2) -----------------------------------------------------------


class FixedGenerator:
    """The generator held fixed at the real data plus Gaussian noise; ignores z.

    It has its own random stream, so the critic's training draws (real batches,
    interpolation weights) are the same for every strategy.
    """

    def __init__(self, data: datasets.DataSource, std: float, seed: int, device: str) -> None:
        self.data = data
        self.std = std
        self.rand = BatchRandom(torch.Generator().manual_seed(seed + 3), device=device)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        real = self.data.draw(self.rand, z.shape[0])
        return real + self.std * self.rand.normal(z.shape[0], *real.shape[1:]).to(real.dtype)


def train_critics(
    compare: CompareSetup, on_event: Callable[[Event], None]
) -> list[tuple[RunResult, torch.nn.Module]]:
    """Train each strategy's critic for ``iters`` steps against ``FixedGenerator``."""
    base = compare.base
    data = datasets.load_for(base)
    processes = distributed.Processes(device=distributed.pick_device(base.device))
    results = []
    with _threads(compare.threads):
        for entry in compare.entries:
            results.append(_train_critic(compare, entry, data, processes, on_event))
    return results


def _train_critic(
    compare: CompareSetup,
    entry: Entry,
    data: datasets.DataSource,
    processes: distributed.Processes,
    on_event: Callable[[Event], None],
) -> tuple[RunResult, torch.nn.Module]:
    base = compare.base
    config = engine.resolve(_entry_config(base, entry, compare.out), data.family)
    parts, _ = engine.build_parts(config, data, processes)
    stand_in = FixedGenerator(data, compare.noise_std, config.seed, str(processes.device))
    parts.generator_fwd = stand_in
    reset = _reset_peak_rss()
    t0 = time.perf_counter()
    status = "ok"
    for step in range(1, config.iters + 1):
        engine.critic_update(parts)
        if step % config.log_every == 0 or step == config.iters:
            if not torch.isfinite(parts.window).all():
                status = "diverged"
                on_event(Event(entry.name, step, config.iters))
                break
            on_event(Event(entry.name, step, config.iters))
    seconds = time.perf_counter() - t0
    on_event(Event(entry.name, config.iters, config.iters, status=status))
    n = min(config.eval_samples, DIAGNOSTIC_SAMPLES)
    side = BatchRandom(torch.Generator().manual_seed(config.seed + 11))
    real = data.draw(side, n)
    fake = FixedGenerator(data, compare.noise_std, config.seed + 1, "cpu")(real)
    critic = parts.critic
    with torch.no_grad():
        w_estimate = float(critic(real).mean() - critic(fake).mean())
    clip = strategy_param(config, "c")
    report = diagnostics.examine_critic(critic, real, fake, config.seed, clip)
    numbers = report.numbers()
    row = {
        "name": entry.name,
        "constraint": entry.constraint,
        "status": status,
        "critic_steps": parts.critic_steps,
        "w_estimate": w_estimate,
        "seconds_per_step": seconds / max(parts.critic_steps, 1),
        "grad_norm_interp_mean": numbers["grad_norm_interp_mean"],
        "grad_norm_interp_std": numbers["grad_norm_interp_std"],
        "lipschitz_estimate": numbers["lipschitz_estimate"],
        "weights_at_bound": numbers["weights_at_bound"],
        "peak_memory_mib": _peak_rss_mib(reset),
    }
    panel = (real.numpy(), fake.numpy(), critic) if data.family == "points" else None
    result = RunResult(entry, {k: _clean(v) for k, v in row.items()}, report, {}, panel)
    return result, critic
