"""The command line: parse options and dispatch. The work happens elsewhere."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from lipgan import __version__
from lipgan.config import TrainConfig, field_docs
from lipgan.errors import LipganError


class OneLineErrors(TyperGroup):
    """Every error the user can cause ends as one line on stderr and an exit code."""

    def main(
        self,
        args=None,
        prog_name=None,
        complete_var=None,
        standalone_mode=True,
        **extra,
    ):
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Exit as exc:
            code = exc.exit_code
        except typer.Abort:
            err.print("error: aborted", markup=False)
            code = 130
        except typer.TyperException as exc:  # usage errors: bad option, bad value
            if type(exc).__name__ == "NoArgsIsHelpError":
                Console().print(exc.format_message(), markup=False, highlight=False)
                sys.exit(2)
            ctx = getattr(exc, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            err.print(f"error: {exc.format_message()}{where}", markup=False)
            code = getattr(exc, "exit_code", 2)
        except LipganError as exc:
            err.print(f"error: {exc}", markup=False)
            code = exc.exit_code
        if code:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=OneLineErrors,
    help="Train Wasserstein GANs with pluggable Lipschitz strategies and compare them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: 5]" must not vanish as markup
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lipgan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Train Wasserstein GANs with pluggable Lipschitz strategies and compare them."""


# --- shared option types ---------------------------------------------------------------


def _help(field: str) -> str:
    """An option's help: its TrainConfig field's doc and default, so the two cannot drift."""
    text = field_docs()[field]
    default = getattr(DEFAULTS, field)
    if default is not None and "default" not in text:
        text = f"{text} [default: {default}]"
    return text


def _opt(field: str, *declarations: str) -> Any:
    """The option for a TrainConfig field, its help text generated (``_help``)."""
    return typer.Option(*declarations, help=_help(field))


DEFAULTS = TrainConfig()
LAMBDA_HELP = (
    "Penalty weight of every part that has one; short for -o PART.weight=... "
    "[default: the strategy's, see `lipgan constraints`]."
)
CLIP_HELP = (
    "Clipping bound of every part that clips; short for -o clip.c=... [default: the strategy's]."
)
OPTION_HELP = "A strategy parameter STRATEGY.PARAM=VALUE (repeatable); wins over --lambda."
CONFIG_HELP = "TOML config; options given here override it."
COMPARE_CONFIG_HELP = (
    "TOML of shared settings (lr, lr_decay, precision ...); its strategy options reach the "
    "strategies they name; options given here override it."
)
RESUME_HELP = "Continue the run in this folder from its last checkpoint."

Constraint = Annotated[str | None, typer.Option("--constraint", "-c", help=_help("constraint"))]
Data = Annotated[str | None, typer.Option("--data", "-d", help=_help("data"))]
Iters = Annotated[int | None, typer.Option(help=_help("iters"))]
Seed = Annotated[int | None, typer.Option(help=_help("seed"))]
TensorBoard = Annotated[
    bool, typer.Option(help="Also log to TensorBoard (needs: pip install lipgan[tensorboard]).")
]
NCritic = Annotated[int | None, typer.Option(help=_help("n_critic"))]
BatchSize = Annotated[int | None, typer.Option(help=_help("batch_size"))]
Hidden = Annotated[int | None, typer.Option(help=_help("hidden"))]
CriticLayers = Annotated[int | None, typer.Option(help=_help("critic_layers"))]
GeneratorLayers = Annotated[int | None, typer.Option(help=_help("generator_layers"))]
LogEvery = Annotated[int | None, typer.Option(help=_help("log_every"))]
EvalSamples = Annotated[int | None, typer.Option(help=_help("eval_samples"))]
EvalSets = Annotated[int | None, typer.Option(help=_help("eval_sets"))]
Device = Annotated[str | None, typer.Option(help=_help("device"))]


class ExecutorName(StrEnum):
    """Where a grid of runs trains (docs/cluster.md)."""

    local = "local"
    ray = "ray"
    slurm = "slurm"


# The executor's options, shared by every command that trains a grid (compare, tune);
# lipgan.executors.from_options turns them into an executor.
ExecutorOption = Annotated[
    ExecutorName,
    typer.Option(help="local processes, a Ray cluster (lipgan[ray]) or Slurm (lipgan[slurm])."),
]
Address = Annotated[
    str | None,
    typer.Option(help="Ray: the cluster to join ('auto' or HOST:PORT) [a local Ray instance]."),
]
SharedFs = Annotated[
    bool,
    typer.Option(help="Ray: run folders on a filesystem all nodes share [checked at the start]."),
]
Partition = Annotated[
    str | None, typer.Option(help="Slurm: the partition [the cluster's default].")
]
TimeLimit = Annotated[
    int | None,
    typer.Option("--time", help="Slurm: each job's time limit in minutes (requeued at it)."),
]
GpusPerJob = Annotated[
    int | None, typer.Option(help="Ray/Slurm: GPUs per run [1 if --device cuda, else 0].")
]
EXECUTOR_OPTIONS = {"executor", "address", "shared_fs", "partition", "time", "gpus_per_job"}


Sampler = Annotated[
    str,
    typer.Option(
        help="Tuning: 'random' (the same draws for every strategy: comparable budgets) or "
        "'tpe' (Optuna's TPE, to find one good configuration)."
    ),
]
Prune = Annotated[
    bool,
    typer.Option(help="Tuning: stop hopeless trials early (successive halving on the metric)."),
]
SpaceFile = Annotated[
    Path | None,
    typer.Option(help="Tuning: TOML of ranges replacing the declared ones (docs/tune.md)."),
]


def _floats(text: str | None, option: str, count: int | None = None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers") from None
    if count is not None and len(values) != count:
        raise typer.BadParameter(f"expected {count} numbers separated by a comma, got {text!r}")
    return values


def _options(pairs: list[str] | None) -> dict[str, float] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or "." not in key:
            raise typer.BadParameter(f"{pair!r} is not STRATEGY.PARAM=NUMBER, e.g. gp.weight=1")
    return out


@app.command()
def train(
    constraint: Constraint = None,
    data: Data = None,
    iters: Iters = None,
    seed: Seed = None,
    n_critic: NCritic = None,
    batch_size: BatchSize = None,
    lr: Annotated[float | None, _opt("lr")] = None,
    generator_lr: Annotated[float | None, _opt("generator_lr")] = None,
    betas: Annotated[str | None, _opt("betas")] = None,
    optimizer: Annotated[str | None, _opt("optimizer")] = None,
    lr_decay: Annotated[str | None, _opt("lr_decay")] = None,
    penalty_weight: Annotated[float | None, typer.Option("--lambda", help=LAMBDA_HELP)] = None,
    clip_value: Annotated[float | None, typer.Option("--clip", help=CLIP_HELP)] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help=OPTION_HELP)] = None,
    schedule: Annotated[str | None, _opt("schedule")] = None,
    generator_weight: Annotated[float | None, _opt("generator_weight")] = None,
    penalty_every: Annotated[int | None, _opt("penalty_every")] = None,
    ema_decay: Annotated[float | None, _opt("ema_decay")] = None,
    critic_warmup: Annotated[
        bool | None, _opt("critic_warmup", "--critic-warmup/--no-critic-warmup")
    ] = None,
    architecture: Annotated[str | None, _opt("architecture")] = None,
    hidden: Hidden = None,
    critic_layers: CriticLayers = None,
    generator_layers: GeneratorLayers = None,
    z_dim: Annotated[int | None, _opt("z_dim")] = None,
    critic_norm: Annotated[str | None, _opt("critic_norm")] = None,
    image_size: Annotated[int | None, _opt("image_size")] = None,
    channels: Annotated[int | None, _opt("channels")] = None,
    seq_len: Annotated[int | None, _opt("seq_len")] = None,
    log_every: LogEvery = None,
    sample_every: Annotated[int | None, _opt("sample_every")] = None,
    checkpoint_every: Annotated[int | None, _opt("checkpoint_every")] = None,
    keep: Annotated[int | None, _opt("keep")] = None,
    eval_samples: EvalSamples = None,
    eval_sets: EvalSets = None,
    device: Device = None,
    precision: Annotated[str | None, _opt("precision")] = None,
    threads: Annotated[int | None, _opt("threads")] = None,
    compile: Annotated[bool | None, _opt("compile", "--compile/--no-compile")] = None,
    on_nan: Annotated[str | None, _opt("on_nan")] = None,
    out: Annotated[Path | None, _opt("out")] = None,
    config: Annotated[Path | None, typer.Option("--config", help=CONFIG_HELP)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    resume: Annotated[Path | None, typer.Option(help=RESUME_HELP)] = None,
    nproc: Annotated[int, typer.Option(help="Data-parallel processes (runs torchrun).")] = 1,
    tensorboard: TensorBoard = False,
) -> None:
    """Train a WGAN with one Lipschitz strategy and write a run folder."""
    given = dict(locals())  # first: every option, by its config field name
    from lipgan import runs, training
    from lipgan.display import TrainDisplay

    overrides: dict[str, Any] = {
        name: value for name, value in given.items() if name in TrainConfig.__dataclass_fields__
    }
    overrides.update(
        betas=_floats(betas, "--betas", 2),
        constraint_options=_options(option),
        out=None if out is None else str(out),
        penalty_weight=penalty_weight,  # --lambda and --clip: folded into the options
        clip_value=clip_value,
    )
    if nproc < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--nproc")
    if resume is not None and (config is not None or overwrite):
        raise typer.BadParameter(
            "--resume cannot be combined with --config or --overwrite",
            param_hint="--resume",
        )
    code = training.train_command(
        None if resume is not None else runs.build_config(config, overrides),
        resume_dir=resume,
        changes=overrides,
        overwrite=overwrite,
        tensorboard=tensorboard,
        nproc=nproc,
        argv=sys.argv[sys.argv.index("train") :] if "train" in sys.argv else ["train"],
        display=TrainDisplay(),
    )
    if code:
        raise typer.Exit(code)


@app.command()
def sample(
    run: Annotated[Path, typer.Argument(help="A run folder written by `lipgan train`.")],
    n: Annotated[int, typer.Option("--n", help="Number of samples.")] = 512,
    seed: Annotated[int, typer.Option(help="Seed of the noise; same seed, same samples.")] = 0,
    out: Annotated[
        Path, typer.Option(help="Output: .png picture, .npy raw array, .txt for text runs.")
    ] = Path("samples.png"),
) -> None:
    """Draw samples from a trained run (no other flags needed)."""
    from lipgan import training

    written = training.sample(run, n, seed, out)
    typer.echo(f"wrote {n} samples to {written}")


@app.command()
def constraints() -> None:
    """List every registered Lipschitz strategy."""
    from lipgan import constraints as registry
    from lipgan.tune import space as spaces

    table = Table(
        title="Lipschitz strategies (combine with '+', e.g. sn+gp)",
        caption="lipgan tune also draws, for every strategy alike: "
        + "; ".join(f"{k} {r.describe()}" for k, r in spaces.SHARED.items()),
    )
    for column in ("name", "description", "hyperparameters", "optimiser", "search space", "from"):
        table.add_column(column, overflow="fold")
    for name in registry.names():
        info = registry.get(name)
        params = ", ".join(f"{k}={v:g}" for k, v in info.params.items()) or "-"
        for family, values in info.family_params.items():
            params += " (" + ", ".join(f"{k}={v:g}" for k, v in values.items()) + f" on {family})"
        table.add_row(
            *(
                escape(cell)
                for cell in (
                    name,
                    info.description,
                    params,
                    info.optimizer.describe(),
                    spaces.describe(spaces.declared(info.factory)),
                    info.source,
                )
            )
        )
    Console(width=max(Console().width, 140)).print(table)


@app.command("data")
def data_kinds() -> None:
    """List the data sets and file formats `--data` accepts."""
    from lipgan import data as datasets

    table = Table(title="Data sets for --data")
    table.add_column("--data")
    table.add_column("what it is", overflow="fold")
    for _, usage, help_text in datasets.KINDS.values():
        table.add_row(usage, help_text)
    Console(width=max(Console().width, 120)).print(table)


@app.command()
def compare(
    ctx: typer.Context,
    constraints: Annotated[
        str, typer.Option(help="Strategies to compare, comma-separated ('+' chains one).")
    ] = "clip,gp,gp-one-sided,fd,none",
    data: Data = None,
    iters: Iters = None,
    seed: Seed = None,
    n_critic: NCritic = None,
    batch_size: BatchSize = None,
    hidden: Hidden = None,
    critic_layers: CriticLayers = None,
    generator_layers: GeneratorLayers = None,
    log_every: LogEvery = None,
    eval_samples: EvalSamples = None,
    eval_sets: EvalSets = None,
    device: Device = None,
    clip_values: Annotated[
        str,
        typer.Option(help="Clipping bounds c; each adds a strategy clip@c ('' for clip's own)."),
    ] = "0.01",
    seeds: Annotated[
        str | None,
        typer.Option(
            help="N seeds from --seed, or a list such as 0,3,7; each strategy runs on each."
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="The strategy every other is tested against [gp, else the first]."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue the compare in this folder (only the executor options may change)."
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Quality threshold for the time-to-threshold columns [2x the metric's floor]."
        ),
    ] = None,
    jobs: Annotated[int, typer.Option(help="Runs trained in parallel processes.")] = 1,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads per run [all cores / jobs].")
    ] = None,
    executor: ExecutorOption = ExecutorName.local,
    address: Address = None,
    shared_fs: SharedFs = True,
    partition: Partition = None,
    time: TimeLimit = None,
    gpus_per_job: GpusPerJob = None,
    critic_only: Annotated[
        bool, typer.Option(help="Fit only critics against real data + noise (paper Fig. 2).")
    ] = False,
    noise_std: Annotated[
        float, typer.Option(help="Critic-only: std of the noise added to real data.")
    ] = 1.0,
    tensorboard: TensorBoard = False,
    out: Annotated[
        Path | None, typer.Option(help="Report folder [reports/compare__<data>__s<seed>__<time>].")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing report folder.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help=COMPARE_CONFIG_HELP)] = None,
    tune: Annotated[
        int | None,
        typer.Option(
            help="Tune every strategy with the same N trials first, then retrain each one's "
            "best on --seeds (docs/tune.md)."
        ),
    ] = None,
    tune_seeds: Annotated[
        str,
        typer.Option(help="--tune: selection seeds, N after the largest of --seeds or a list."),
    ] = "2",
    tune_iters: Annotated[
        int | None, typer.Option(help="--tune: iterations per trial run [the compare's budget].")
    ] = None,
    sampler: Sampler = "random",
    prune: Prune = False,
    space: SpaceFile = None,
) -> None:
    """Train several strategies on the same seeds, data and budget; write a report."""
    given = dict(locals())
    if tune is not None or (resume is not None and (resume / "tuned.json").is_file()):
        return _compare_tuned(ctx, given)
    from lipgan import executors, runs
    from lipgan.callbacks import StopOnSignals
    from lipgan.compare import plan, run_compare
    from lipgan.display import CompareDisplay

    runner = executors.from_options(
        executor.value, jobs=jobs, threads=threads, address=address, shared_fs=shared_fs,
        partition=partition, time_min=time, gpus_per_job=gpus_per_job,
    )  # fmt: skip
    local = executor is ExecutorName.local
    # on a cluster its nodes' cores bound --threads, not this machine's: plan checks none
    plan_threads = threads if local else None
    if resume is not None:
        _refuse_with_resume(ctx, {"resume", "jobs", "threads", *EXECUTOR_OPTIONS})
        setup = plan.resume_setup(resume, jobs if _given(ctx, "jobs") else None, plan_threads)
    else:
        fields = set(TrainConfig.__dataclass_fields__) - {"out"}  # --out is the report folder
        base = runs.build_config(
            config, {k: v for k, v in given.items() if k in fields}, check_options=False
        )
        setup = plan.setup(
            base, plan.plan(constraints, _floats(clip_values, "--clip-values")), out,
            overwrite=overwrite, seeds=plan.parse_seeds(seeds, base.seed), parallel=jobs,
            threshold=threshold, baseline=baseline, critic_only=critic_only,
            noise_std=noise_std, tensorboard=tensorboard, threads=plan_threads,
            command="lipgan " + " ".join(sys.argv[1:]),
        )  # fmt: skip
    with StopOnSignals() as should_stop:
        run_compare(setup, CompareDisplay(), should_stop, None if local else runner)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user typed the option (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _refuse_with_resume(ctx: typer.Context, allowed: set[str]) -> None:
    typed = [p for p in ctx.command.params if p.name not in allowed and _given(ctx, p.name)]
    if typed:
        raise typer.BadParameter(
            f"{typed[0].opts[0]} cannot change a saved compare; drop it (only --jobs, "
            "--threads and the --executor options may change)",
            param_hint="--resume",
        )


def _compare_tuned(ctx: typer.Context, given: dict[str, Any]) -> None:
    """``compare --tune N`` (and its --resume): lipgan.tune.compare does the work."""
    from lipgan import runs
    from lipgan.callbacks import StopOnSignals
    from lipgan.compare import plan
    from lipgan.display import CompareDisplay
    from lipgan.tune import compare as tuned

    runner, threads = _grid_executor(given)
    for name in ("critic_only", "tensorboard"):
        if given[name]:
            raise typer.BadParameter(f"--{name.replace('_', '-')} cannot be combined with --tune")
    if given["resume"] is not None:
        _refuse_with_saved_study(ctx, "tuned compare")
        setup = tuned.resume_setup(
            given["resume"], given["jobs"] if _given(ctx, "jobs") else None, threads
        )
    else:
        if _given(ctx, "clip_values"):
            raise typer.BadParameter("--tune tunes clip's c; drop --clip-values")
        fields = set(TrainConfig.__dataclass_fields__) - {"out"}  # --out is the report folder
        base = runs.build_config(
            given["config"], {k: v for k, v in given.items() if k in fields}, check_options=False
        )
        evaluation = plan.parse_seeds(given["seeds"], base.seed)
        selection = plan.parse_seeds(given["tune_seeds"])  # a list, or N: 0..N-1
        if "," not in given["tune_seeds"]:  # N seeds after the evaluation seeds
            selection = tuned.selection_seeds(len(selection), evaluation)
        setup = tuned.setup(
            base, plan.plan(given["constraints"], None), given["out"], trials=given["tune"],
            evaluation_seeds=evaluation, selection=selection,
            tune_iters=given["tune_iters"], sampler=given["sampler"], prune=given["prune"],
            space_file=given["space"], parallel=given["jobs"], threads=threads,
            threshold=given["threshold"], baseline=given["baseline"],
            overwrite=given["overwrite"], command="lipgan " + " ".join(sys.argv[1:]),
        )  # fmt: skip
    with StopOnSignals() as should_stop:
        tuned.run_tuned_compare(setup, CompareDisplay(), should_stop, runner)


def _grid_executor(given: dict[str, Any]) -> tuple[Any, int | None]:
    """The executor the options ask for (checked before any folder is claimed) and the
    --threads the plan checks against this machine's cores: none on a cluster, whose
    nodes' cores bound them (the executor gives each task its --threads)."""
    from lipgan import executors

    kind = ExecutorName(given["executor"])
    runner = executors.from_options(
        kind.value, jobs=given["jobs"], threads=given["threads"], address=given["address"],
        shared_fs=given["shared_fs"], partition=given["partition"], time_min=given["time"],
        gpus_per_job=given["gpus_per_job"],
    )  # fmt: skip
    local = kind is ExecutorName.local
    return (None if local else runner), (given["threads"] if local else None)


def _refuse_with_saved_study(ctx: typer.Context, what: str) -> None:
    """--resume of a study: only --jobs, --threads and the executor options may change."""
    allowed = {"resume", "jobs", "threads", *EXECUTOR_OPTIONS}
    typed = [p for p in ctx.command.params if p.name not in allowed and _given(ctx, p.name)]
    if typed:
        raise typer.BadParameter(
            f"{typed[0].opts[0]} cannot change a saved {what}; drop it (only --jobs, "
            "--threads and the --executor options may change)",
            param_hint="--resume",
        )


@app.command()
def tune(
    ctx: typer.Context,
    constraint: Constraint = None,
    data: Data = None,
    trials: Annotated[
        int, typer.Option(help="Trials (draws of the search space); trial 0 is the defaults.")
    ] = 16,
    seeds: Annotated[
        str | None,
        typer.Option(help="Selection seeds every trial trains on: N from --seed, or a list."),
    ] = None,
    iters: Iters = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the draws and the first selection seed [default: 0]."),
    ] = None,
    sampler: Sampler = "random",
    prune: Prune = False,
    space: SpaceFile = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Quality threshold a trial 'reaches' [2x the metric's floor]."),
    ] = None,
    batch_size: BatchSize = None,
    hidden: Hidden = None,
    critic_layers: CriticLayers = None,
    generator_layers: GeneratorLayers = None,
    log_every: LogEvery = None,
    eval_samples: EvalSamples = None,
    eval_sets: EvalSets = None,
    device: Device = None,
    jobs: Annotated[int, typer.Option(help="Runs trained in parallel processes.")] = 1,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads per run [all cores / jobs].")
    ] = None,
    executor: ExecutorOption = ExecutorName.local,
    address: Address = None,
    shared_fs: SharedFs = True,
    partition: Partition = None,
    time: TimeLimit = None,
    gpus_per_job: GpusPerJob = None,
    out: Annotated[
        Path | None, typer.Option(help="Study folder [reports/tune-<constraint>__<data>__...].")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing study folder.")] = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue the study in this folder (only --jobs, --threads and the "
            "--executor options may change)."
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help=CONFIG_HELP)] = None,
) -> None:
    """Search one strategy's hyperparameters; write the best as a config for `train`."""
    given = dict(locals())
    from lipgan import runs
    from lipgan.callbacks import StopOnSignals
    from lipgan.compare import plan
    from lipgan.display import CompareDisplay
    from lipgan.tune import study

    runner, plan_threads = _grid_executor(given)
    if resume is not None:
        _refuse_with_saved_study(ctx, "study")
        setup = study.resume_setup(resume, jobs if _given(ctx, "jobs") else None, plan_threads)
    else:
        fields = set(TrainConfig.__dataclass_fields__) - {"out"}  # --out is the study folder
        base = runs.build_config(config, {k: v for k, v in given.items() if k in fields})
        setup = study.setup(
            base, out, trials=trials, seeds=plan.parse_seeds(seeds, base.seed),
            sampler=sampler, prune=prune, space_file=space, parallel=jobs,
            threads=plan_threads, threshold=threshold, overwrite=overwrite,
            command="lipgan " + " ".join(sys.argv[1:]),
        )  # fmt: skip
    with StopOnSignals() as should_stop:
        study.run_tune(setup, CompareDisplay(), should_stop, runner)


@app.command()
def diagnose(
    run: Annotated[Path, typer.Argument(help="A run folder written by `lipgan train`.")],
    out: Annotated[Path | None, typer.Option(help="Output folder [RUN/diagnostics].")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Quality threshold for steps/seconds to reach it.")
    ] = None,
) -> None:
    """Draw the compare's figures and table for one finished run."""
    from lipgan.compare import run_diagnose
    from lipgan.display import CompareDisplay

    run_diagnose(run, out, threshold, CompareDisplay())


def main() -> None:
    app()
