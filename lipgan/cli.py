"""The command line: parse options and dispatch. The work happens elsewhere."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from lipgan import __version__
from lipgan.errors import LipganError


class OneLineErrors(TyperGroup):
    """Every error the user can cause ends as one line on stderr and an exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
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
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Train Wasserstein GANs with pluggable Lipschitz strategies and compare them."""


# --- shared option types ---------------------------------------------------------------

Constraint = Annotated[
    str | None,
    typer.Option("--constraint", "-c", help="Strategy, or several joined by '+' [default: gp]."),
]
Data = Annotated[
    str | None,
    typer.Option("--data", "-d", help="Data set: see `lipgan data` [default: 8gaussians]."),
]
Iters = Annotated[int | None, typer.Option(help="Generator iterations [default: 1000].")]
Seed = Annotated[int | None, typer.Option(help="Random seed [default: 0].")]
TensorBoard = Annotated[
    bool,
    typer.Option(help="Also log to TensorBoard (needs: pip install lipgan[tensorboard])."),
]
NCritic = Annotated[int | None, typer.Option(help="Critic steps per generator step [default: 5].")]
BatchSize = Annotated[int | None, typer.Option(help="Batch size [default: 256; text 64].")]
Hidden = Annotated[
    int | None, typer.Option(help="MLP width [512] / conv base channels [64] / text [32].")
]
CriticLayers = Annotated[
    int | None,
    typer.Option(help="MLP critic hidden layers; deeper shows clipping's gradient decay [3]."),
]
GeneratorLayers = Annotated[int | None, typer.Option(help="MLP generator hidden layers [3].")]
LogEvery = Annotated[int | None, typer.Option(help="Metrics every k iterations [50].")]
EvalSamples = Annotated[
    int | None, typer.Option(help="Samples for metrics (per set on toy data) [512].")
]
EvalSets = Annotated[
    int | None,
    typer.Option(help="Toy data: W1 and its floor averaged over this many sets [4]."),
]
Device = Annotated[str | None, typer.Option(help="auto, cpu or cuda [auto].")]


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


@contextmanager
def _stop_on_signals():
    """Ctrl-C / SIGTERM ask the loop to stop after the current iteration."""
    received: list[int] = []

    def handler(signum, frame):
        if received:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: received[0] if received else None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@app.command()
def train(
    constraint: Constraint = None,
    data: Data = None,
    iters: Iters = None,
    seed: Seed = None,
    n_critic: NCritic = None,
    batch_size: BatchSize = None,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate [default: the strategy's].")
    ] = None,
    generator_lr: Annotated[
        float | None, typer.Option(help="Generator learning rate, for TTUR [default: --lr].")
    ] = None,
    betas: Annotated[
        str | None, typer.Option(help="Adam betas as B1,B2 [default: the strategy's].")
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="adam or rmsprop [default: the strategy's].")
    ] = None,
    penalty_weight: Annotated[
        float | None,
        typer.Option("--lambda", help="Penalty weight lambda [default: the strategy's]."),
    ] = None,
    clip_value: Annotated[
        float | None, typer.Option("--clip", help="Clipping bound c [default: 0.01].")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Strategy setting STRATEGY.PARAM=VALUE, repeatable."),
    ] = None,
    schedule: Annotated[
        str | None, typer.Option(help="alternating or one-step [default: alternating].")
    ] = None,
    generator_weight: Annotated[
        float | None, typer.Option(help="One-step: weight of the generator loss [default: 1].")
    ] = None,
    penalty_every: Annotated[
        int | None, typer.Option(help="Penalty every k critic steps, scaled by k [default: 1].")
    ] = None,
    ema_decay: Annotated[
        float | None,
        typer.Option(
            help="Decay of the generator weight average that metrics and samples come from "
            "(warm-up min(decay, (1+t)/(10+t))); 0 turns it off [default: 0.999]."
        ),
    ] = None,
    critic_warmup: Annotated[
        bool | None,
        typer.Option(
            "--critic-warmup/--no-critic-warmup",
            help="WGAN warm-up: 100 critic steps for the first 25 iterations and every 500th.",
        ),
    ] = None,
    architecture: Annotated[
        str | None, typer.Option(help="auto, mlp, dcgan, resnet or text [default: auto].")
    ] = None,
    hidden: Hidden = None,
    critic_layers: CriticLayers = None,
    generator_layers: GeneratorLayers = None,
    z_dim: Annotated[int | None, typer.Option(help="Noise dimension.")] = None,
    critic_norm: Annotated[
        str | None, typer.Option(help="none, layer or batch (not with a penalty).")
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="Resize images to this size.")] = None,
    channels: Annotated[int | None, typer.Option(help="Image channels: 1 or 3.")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Text sequence length [32].")] = None,
    log_every: LogEvery = None,
    sample_every: Annotated[int | None, typer.Option(help="Samples every k iterations.")] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Numbered checkpoint every k iterations.")
    ] = None,
    keep: Annotated[int | None, typer.Option(help="Numbered checkpoints to keep [3].")] = None,
    eval_samples: EvalSamples = None,
    eval_sets: EvalSets = None,
    device: Device = None,
    precision: Annotated[str | None, typer.Option(help="fp32, bf16 or fp16 [fp32].")] = None,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads [torch's choice; 1 on a busy machine].")
    ] = None,
    compile: Annotated[
        bool | None, typer.Option("--compile/--no-compile", help="torch.compile where sound.")
    ] = None,
    on_nan: Annotated[
        str | None, typer.Option(help="stop or rollback on a non-finite loss [stop].")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run folder [runs/<constraint>__<data>__s<seed>__<time>].")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML config; options given here override it.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the run in this folder from its last checkpoint.")
    ] = None,
    nproc: Annotated[
        int, typer.Option(help="Data-parallel processes (launches torchrun) [1].")
    ] = 1,
    tensorboard: TensorBoard = False,
) -> None:
    """Train a WGAN with one Lipschitz strategy and write a run folder."""
    given = dict(locals())  # first: every option, by its config field name
    from lipgan import runs
    from lipgan.config import TrainConfig
    from lipgan.engine import default_out as engine_default_out
    from lipgan.reporting import train_with_progress

    overrides: dict[str, Any] = {
        name: value for name, value in given.items() if name in TrainConfig.__dataclass_fields__
    }
    overrides.update(
        betas=_floats(betas, "--betas", 2),
        constraint_options=_options(option),
        out=None if out is None else str(out),
    )
    if nproc < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--nproc")
    if tensorboard:  # before any folder is claimed or replaced
        from lipgan.tensorboard import require_tensorboard

        require_tensorboard()
    if nproc > 1:
        from lipgan.launch import launch

        argv = sys.argv[sys.argv.index("train") :] if "train" in sys.argv else ["train"]
        target = None
        if resume is None:  # every process must write to (and only rank 0 writes) one folder
            target = str(out or engine_default_out(runs.build_config(config, overrides)))
        raise typer.Exit(launch(nproc, argv, target))
    if resume is not None:
        if config is not None or overwrite:
            raise typer.BadParameter(
                "--resume cannot be combined with --config or --overwrite", param_hint="--resume"
            )
        prepared = runs.prepare_resume(resume, overrides)
    else:
        prepared = runs.prepare(runs.build_config(config, overrides), overwrite)
    logger = None
    if tensorboard:
        from lipgan.tensorboard import TensorBoardLogger

        logger = TensorBoardLogger(prepared.run_dir / "tensorboard", prepared.run_dir)
    with _stop_on_signals() as should_stop:
        train_with_progress(prepared, should_stop, extra=logger)
    if logger is not None:
        logger.close()


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
    from lipgan import runs

    written = runs.sample(run, n, seed, out)
    typer.echo(f"wrote {n} samples to {written}")


@app.command()
def constraints() -> None:
    """List every registered Lipschitz strategy."""
    from lipgan import constraints as registry

    table = Table(title="Lipschitz strategies (combine with '+', e.g. sn+gp)")
    for column in ("name", "description", "hyperparameters", "optimiser", "from"):
        table.add_column(column, overflow="fold")
    for name in registry.names():
        info = registry.get(name)
        params = ", ".join(f"{k}={v:g}" for k, v in info.params.items()) or "-"
        for family, values in info.family_params.items():
            params += " (" + ", ".join(f"{k}={v:g}" for k, v in values.items()) + f" on {family})"
        table.add_row(
            *(
                escape(cell)
                for cell in (name, info.description, params, info.optimizer.describe(), info.source)
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
            help="Continue the compare in this folder (only --jobs/--threads may change)."
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Quality threshold for the time-to-threshold columns [2x W1 floor]."),
    ] = None,
    jobs: Annotated[int, typer.Option(help="Runs trained in parallel processes.")] = 1,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads per run [all cores / jobs].")
    ] = None,
    critic_only: Annotated[
        bool,
        typer.Option(help="Fit only critics against real data + noise (paper Fig. 2)."),
    ] = False,
    noise_std: Annotated[
        float, typer.Option(help="Critic-only: std of the noise added to real data.")
    ] = 1.0,
    tensorboard: TensorBoard = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Report folder [reports/compare__<data>__s<seed>__<time>]."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing report folder.")] = False,
) -> None:
    """Train several strategies on the same seeds, data and budget; write a report."""
    given = dict(locals())
    from lipgan import runs
    from lipgan.compare import plan, run_compare
    from lipgan.config import TrainConfig
    from lipgan.display import CompareDisplay

    if resume is not None:
        _refuse_with_resume(ctx, {"resume", "jobs", "threads"})
        setup = plan.resume_setup(resume, jobs if _given(ctx, "jobs") else None, threads)
    else:
        fields = set(TrainConfig.__dataclass_fields__) - {"out"}  # --out is the report folder
        base = runs.build_config(None, {k: v for k, v in given.items() if k in fields})
        setup = plan.setup(
            base, plan.plan(constraints, _floats(clip_values, "--clip-values")), out,
            overwrite=overwrite, seeds=plan.parse_seeds(seeds, base.seed), parallel=jobs,
            threshold=threshold, baseline=baseline, critic_only=critic_only,
            noise_std=noise_std, tensorboard=tensorboard, threads=threads,
            command="lipgan " + " ".join(sys.argv[1:]),
        )  # fmt: skip
    with _stop_on_signals() as should_stop:
        run_compare(setup, CompareDisplay(), should_stop)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user typed the option (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _refuse_with_resume(ctx: typer.Context, allowed: set[str]) -> None:
    typed = [p for p in ctx.command.params if p.name not in allowed and _given(ctx, p.name)]
    if typed:
        raise typer.BadParameter(
            f"{typed[0].opts[0]} cannot change a saved compare; drop it (only --jobs and "
            "--threads may change)",
            param_hint="--resume",
        )


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
