"""The training loop. It reads top to bottom in ``train``; strategies, data and models
plug into it through their small interfaces and it never asks for a strategy's name.

One generator iteration (alternating schedule) is ``n_critic`` critic updates

    L_D = E[D(G(z))] - E[D(x)] + penalty        then  after_critic_step(critic)

followed by one generator update ``L_G = -E[D(G(z))]``. The one-step schedule does
both with a single loss and one backward (docs/schedules.md).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import random
import shlex
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lipgan import __version__, diagnostics, distributed, models
from lipgan import constraints as registry
from lipgan import data as datasets
from lipgan.config import TrainConfig, dump_toml, replace
from lipgan.constraints.base import BatchRandom, Chain, Constraint, CriticBatch
from lipgan.errors import ConfigError, DivergenceError, LipganError
from lipgan.runio import RunFolder, atomic_write_text, load_checkpoint, load_state, save_checkpoint

EVAL_SEED_OFFSET = 1_000_003  # evaluation draws never share a stream with training


# --- configuration resolved for a strategy and a data family ----------------------------


def resolve(config: TrainConfig, family: str) -> TrainConfig:
    """Fill every strategy- and data-dependent default, so the saved config is complete."""
    recommended = registry.optimizer_for(config.constraint)
    optimizer = config.optimizer or recommended.name
    if optimizer != recommended.name:
        recommended = registry.ADAM if optimizer == "adam" else registry.RMSPROP
    default_lr, default_betas = recommended.for_family(family)
    lr = config.lr if config.lr is not None else default_lr
    betas = None
    if optimizer == "adam":
        betas = config.betas or default_betas
    elif config.betas is not None:
        raise ConfigError("--betas only applies to Adam; drop it or add --optimizer adam")

    params = registry.resolve_params(
        config.constraint, family, config.penalty_weight, config.clip_value,
        config.constraint_options,
    )  # fmt: skip
    weights = {p["weight"] for p in params.values() if "weight" in p}
    clips = {p["c"] for p in params.values() if "c" in p}
    penalty_weight = weights.pop() if len(weights) == 1 else None
    clip_value = clips.pop() if len(clips) == 1 else None
    options = {
        f"{name}.{key}": value
        for name, part in params.items()
        for key, value in part.items()
        if not (key == "weight" and penalty_weight is not None)
        and not (key == "c" and clip_value is not None)
    }
    resolved = replace(
        config,
        optimizer=optimizer,
        lr=lr,
        generator_lr=config.generator_lr or lr,
        betas=betas,
        penalty_weight=penalty_weight,
        clip_value=clip_value,
        constraint_options=options,
        n_critic=config.n_critic or (1 if config.schedule == "one-step" else 5),
        z_dim=config.z_dim or (2 if family == "points" else 128),
        hidden=config.hidden or {"points": 512, "text": 32}.get(family, 64),
        batch_size=config.batch_size or (64 if family == "text" else 256),
        architecture=models.architecture_for(config, family),
    )
    if resolved.critic_norm == "batch" and has_penalty(build_constraint(resolved, family)):
        raise ConfigError(
            "--critic-norm batch cannot be used with a penalty: the penalty is per sample and "
            "batch norm makes each score depend on the whole batch; use --critic-norm layer"
        )
    if resolved.precision == "fp16" and distributed.pick_device(resolved.device).type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return resolved


def build_constraint(config: TrainConfig, family: str) -> Constraint:
    params = registry.resolve_params(
        config.constraint, family, config.penalty_weight, config.clip_value,
        config.constraint_options,
    )  # fmt: skip
    return registry.build(config.constraint, params)


def has_penalty(constraint: Constraint) -> bool:
    parts = constraint.parts if isinstance(constraint, Chain) else [constraint]
    return any(type(p).penalty is not Constraint.penalty for p in parts)


def default_out(config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    data = config.data.replace("/", "_").replace(":", "-")[:40]
    name = config.constraint.replace("+", "-")
    return Path("runs") / f"{name}__{data}__s{config.seed}__{stamp}"


# --- what one run holds ------------------------------------------------------------------


@dataclass
class Parts:
    """Everything the step functions touch; built once in ``train``."""

    config: TrainConfig
    data: datasets.DataSource
    constraint: Constraint
    generator: nn.Module
    critic: nn.Module
    generator_fwd: Callable[[Tensor], Tensor]
    """The generator as called for training (DDP-wrapped and/or compiled)."""
    critic_fwd: Callable[[Tensor], Tensor]
    """The critic as called for scores with a first-order backward."""
    critic_const_fwd: Callable[[Tensor], Tensor]
    """The critic as called while its weights are frozen (no DDP: nothing to reduce)."""
    penalty_critic: nn.Module
    """The critic the penalty calls (eager where double backward is needed)."""
    opt_generator: torch.optim.Optimizer
    opt_critic: torch.optim.Optimizer
    rand: BatchRandom
    processes: distributed.Processes
    local_batch: int
    autocast: Callable[[], contextlib.AbstractContextManager[Any]]
    scaler_critic: torch.amp.GradScaler | None
    scaler_generator: torch.amp.GradScaler | None
    critic_steps: int = 0
    window: Tensor = field(default_factory=lambda: torch.zeros(4))
    """Sums since the last log: critic loss, penalty, generator loss, critic steps."""


def _optimizers(config: TrainConfig, generator: nn.Module, critic: nn.Module):
    assert config.lr is not None and config.generator_lr is not None  # resolved
    on_cuda = next(critic.parameters()).is_cuda
    fast = {"fused": True} if on_cuda else {"foreach": True}
    if config.optimizer == "rmsprop":
        return (
            torch.optim.RMSprop(generator.parameters(), lr=config.generator_lr, **fast),
            torch.optim.RMSprop(critic.parameters(), lr=config.lr, **fast),
        )
    return (
        torch.optim.Adam(
            generator.parameters(), lr=config.generator_lr, betas=config.betas, **fast
        ),
        torch.optim.Adam(critic.parameters(), lr=config.lr, betas=config.betas, **fast),
    )


def _backward_and_step(
    loss: Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> None:
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


@contextlib.contextmanager
def _frozen(module: nn.Module):
    """Stop-gradient on a module's parameters: its weights become constants in the graph."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# --- the three kinds of update ------------------------------------------------------------


def critic_loss(parts: Parts, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor | None]:
    """(L_D without penalty, weighted penalty or None) on one batch."""
    n = real.shape[0]
    # Real and fake go through the critic as one batch: one pass instead of two.
    scores = parts.critic_fwd(torch.cat([real, fake]))
    critic_real, critic_fake = scores[:n], scores[n:]
    loss = critic_fake.mean() - critic_real.mean()
    penalty = None
    every = parts.config.penalty_every
    if parts.critic_steps % every == 0:
        batch = CriticBatch(real, fake, critic_real, critic_fake, parts.rand, parts.scaler_critic)
        penalty = parts.constraint.penalty(parts.penalty_critic, batch)
        if penalty is not None and every > 1:
            penalty = penalty * every  # lazy regularisation keeps the same average strength
    return loss, penalty


def critic_update(parts: Parts) -> None:
    config = parts.config
    real = parts.data.draw(parts.rand, parts.local_batch)
    z = parts.rand.normal(parts.local_batch, config.z_dim)
    with parts.autocast():
        with torch.no_grad():
            fake = parts.generator_fwd(z)
        loss, penalty = critic_loss(parts, real, fake.to(real.dtype))
        total = loss if penalty is None else loss + penalty
    _backward_and_step(total, parts.opt_critic, parts.scaler_critic)
    parts.constraint.after_critic_step(parts.critic)
    parts.critic_steps += 1
    _accumulate(parts, loss, penalty, None)


def generator_update(parts: Parts) -> None:
    z = parts.rand.normal(parts.local_batch, parts.config.z_dim)
    with _frozen(parts.critic), parts.autocast():
        loss = -parts.critic_const_fwd(parts.generator_fwd(z)).mean()
    _backward_and_step(loss, parts.opt_generator, parts.scaler_generator)
    _accumulate(parts, None, None, loss)


def one_step_update(parts: Parts) -> None:
    """Both networks from one loss and one backward (BACKGROUND.md section 5).

    total = L_D(D, sg(G)) + lambda_g * L_G(sg(D), G): the critic part sees the generator
    output detached, the generator part sees the critic's weights as constants, so the
    single backward gives D exactly grad L_D and G exactly lambda_g * grad L_G, both at
    the pre-update parameters (= a 1:1 alternating step whose generator gradient is
    taken before the critic moves).
    """
    config = parts.config
    real = parts.data.draw(parts.rand, parts.local_batch)
    z = parts.rand.normal(parts.local_batch, config.z_dim)
    with parts.autocast():
        fake = parts.generator_fwd(z)
        loss, penalty = critic_loss(parts, real, fake.detach().to(real.dtype))
        with _frozen(parts.critic):
            generator_loss = -parts.critic_const_fwd(fake).mean()
        total = loss + config.generator_weight * generator_loss
        if penalty is not None:
            total = total + penalty
    parts.opt_critic.zero_grad(set_to_none=True)
    parts.opt_generator.zero_grad(set_to_none=True)
    if parts.scaler_critic is not None:
        # One scaler for both: the loss is one graph.
        parts.scaler_critic.scale(total).backward()
        parts.scaler_critic.step(parts.opt_critic)
        parts.scaler_critic.step(parts.opt_generator)
        parts.scaler_critic.update()
    else:
        total.backward()
        parts.opt_critic.step()
        parts.opt_generator.step()
    parts.constraint.after_critic_step(parts.critic)
    parts.critic_steps += 1
    _accumulate(parts, loss, penalty, generator_loss)


def _accumulate(
    parts: Parts, critic: Tensor | None, penalty: Tensor | None, generator: Tensor | None
) -> None:
    """Add to the log window on the device: no host sync until the next log step."""
    w = parts.window
    if critic is not None:
        w[0] += critic.detach().float()
        w[3] += 1
    if penalty is not None:
        w[1] += penalty.detach().float()
    if generator is not None:
        w[2] += generator.detach().float()


# --- measurements taken at log steps (off the hot path) -----------------------------------


@torch.no_grad()
def _eval_noise(config: TrainConfig, family: str, device: torch.device) -> Tensor:
    """Fixed noise for metrics: eval_sets sets of eval_samples on toy data, else one."""
    sets = config.eval_sets if family == "points" else 1
    g = torch.Generator().manual_seed(config.seed + EVAL_SEED_OFFSET)
    return torch.randn(config.eval_samples * sets, config.z_dim, generator=g).to(device)


def fresh_interpolate_grad_norms(parts: Parts, n: int = 256) -> Tensor:
    """||grad_x D(x_hat)|| on fresh interpolates from a side generator (no training RNG)."""
    config = parts.config
    side = BatchRandom(
        torch.Generator(parts.rand.generator.device).manual_seed(config.seed + 7),
        device=str(parts.rand.device),
    )
    real = parts.data.draw(side, n)
    with torch.no_grad():
        fake = parts.generator(side.normal(n, config.z_dim)).to(real.dtype)
    return diagnostics.interpolate_grad_norms(parts.critic, real, fake, side)


def measure(parts: Parts, iteration: int, eval_z: Tensor) -> dict[str, float]:
    """The deterministic metrics of one log step (same seed, same numbers)."""
    window = distributed.mean_across(parts.window.to(parts.rand.device), parts.processes).cpu()
    critic_steps = max(float(window[3]), 1.0)
    generator_steps = max(critic_steps / parts.config.n_critic, 1.0)
    critic_loss_mean = float(window[0]) / critic_steps
    metrics: dict[str, float] = {
        "step": iteration,
        "loss/critic": critic_loss_mean,
        "loss/penalty": float(window[1]) / critic_steps,
        "loss/generator": float(window[2]) / generator_steps,
        "wasserstein/estimate": -critic_loss_mean,
    }
    norms = fresh_interpolate_grad_norms(parts)
    metrics["lipschitz/grad_norm_mean"] = float(norms.mean())
    metrics["lipschitz/grad_norm_std"] = float(norms.std())
    if parts.processes.is_main:  # only the main process writes metrics
        with torch.no_grad():
            fake = parts.generator(eval_z)
        seed = parts.config.seed + EVAL_SEED_OFFSET
        metrics.update(parts.data.evaluate(fake, seed, sets=_eval_sets(parts)))
    return {k: (round(v, 8) if isinstance(v, float) else v) for k, v in metrics.items()}


def _eval_sets(parts: Parts) -> int:
    return parts.config.eval_sets if parts.data.family == "points" else 1


def _finite(parts: Parts) -> bool:
    values = [parts.window] + [p.detach() for p in parts.critic.parameters()]
    values += [p.detach() for p in parts.generator.parameters()]
    return bool(torch.stack([torch.isfinite(v).all().cpu() for v in values]).all())


# --- checkpoints ----------------------------------------------------------------------------


def _rng_state(parts: Parts) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "engine": parts.rand.generator.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def _set_rng_state(parts: Parts, state: dict[str, Any]) -> None:
    parts.rand.generator.set_state(state["engine"])
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def snapshot(parts: Parts, iteration: int, extra: dict[str, Any]) -> dict[str, Any]:
    """The whole training state after ``iteration`` as tensors and plain data."""
    state = {
        "lipgan_version": __version__,
        "config": parts.config.to_dict(),
        "data": parts.data.meta(),
        "iteration": iteration,
        "critic_steps": parts.critic_steps,
        "window": parts.window.detach().cpu().clone(),
        "generator": parts.generator.state_dict(),
        "critic": parts.critic.state_dict(),
        "opt_generator": parts.opt_generator.state_dict(),
        "opt_critic": parts.opt_critic.state_dict(),
        "rng": _rng_state(parts),
        **extra,
    }
    for name in ("scaler_critic", "scaler_generator"):
        scaler = getattr(parts, name)
        if scaler is not None:
            state[name] = scaler.state_dict()
    return copy.deepcopy(state)


def restore(parts: Parts, state: dict[str, Any], path: Path) -> None:
    load_state(parts.generator, state["generator"], "generator", path)
    load_state(parts.critic, state["critic"], "critic", path)
    parts.opt_generator.load_state_dict(state["opt_generator"])
    parts.opt_critic.load_state_dict(state["opt_critic"])
    for name in ("scaler_critic", "scaler_generator"):
        scaler = getattr(parts, name)
        if scaler is not None and name in state:
            scaler.load_state_dict(state[name])
    parts.critic_steps = int(state["critic_steps"])
    parts.window = state["window"].clone().to(parts.window.device)
    _set_rng_state(parts, state["rng"])


def _set_lr_scale(parts: Parts, scale: float) -> None:
    config = parts.config
    for group in parts.opt_critic.param_groups:
        group["lr"] = config.lr * scale
    for group in parts.opt_generator.param_groups:
        group["lr"] = config.generator_lr * scale


# --- the loop ---------------------------------------------------------------------------------


@dataclass
class Progress:
    """What the loop reports after every generator iteration."""

    iteration: int
    total: int
    metrics: dict[str, float] | None = None
    """Set on log steps only."""
    message: str | None = None
    """A line worth showing (a rollback, a compile note)."""


class Interrupted(LipganError):
    """Training stopped on a signal after writing a checkpoint."""


def build_parts(
    config: TrainConfig, data: datasets.DataSource, processes: distributed.Processes
) -> tuple[Parts, list[str]]:
    """Models, optimisers, strategy and RNG for a resolved config; notes for the user."""
    notes: list[str] = []
    device = processes.device
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    random.seed(config.seed)
    generator, critic = models.build(config, data.meta())
    generator, critic = generator.to(device), critic.to(device)
    constraint = build_constraint(config, data.family)
    constraint.attach(critic)
    opt_generator, opt_critic = _optimizers(config, generator, critic)

    if config.batch_size % processes.world:
        raise ConfigError(
            f"--batch-size {config.batch_size} does not split over {processes.world} "
            "processes; use a multiple of the process count"
        )
    generator_fwd: Callable[[Tensor], Tensor] = generator
    critic_fwd: Callable[[Tensor], Tensor] = critic
    if processes.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        # The generator's and critic's gradients are averaged by one all-reduce per
        # backward; the penalty takes its input gradient with autograd.grad, so the
        # all-reduce fires once, in the ordinary backward of the total loss.
        generator_fwd = DDP(generator, device_ids=ids, broadcast_buffers=False)
        critic_fwd = DDP(critic, device_ids=ids, broadcast_buffers=False)
    penalty_critic: nn.Module = critic
    critic_const_fwd: Callable[[Tensor], Tensor] = critic
    if config.compile:
        generator_fwd = torch.compile(generator_fwd)
        critic_fwd = torch.compile(critic_fwd)
        critic_const_fwd = torch.compile(critic) if processes.world > 1 else critic_fwd
        if constraint.needs_double_backward:
            notes.append(
                "compiled the generator and the critic's score passes; the penalty's pass "
                "runs eager because torch.compile does not support double backward"
            )
        else:
            penalty_critic = critic_fwd  # type: ignore[assignment]
            notes.append("compiled the generator and every critic pass")

    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=autocast_dtype)

    scalers = (None, None)
    if config.precision == "fp16":
        scalers = (torch.amp.GradScaler(device.type), torch.amp.GradScaler(device.type))

    rng = torch.Generator(device).manual_seed(config.seed)
    parts = Parts(
        config=config,
        data=data,
        constraint=constraint,
        generator=generator,
        critic=critic,
        generator_fwd=generator_fwd,
        critic_fwd=critic_fwd,
        critic_const_fwd=critic_const_fwd,
        penalty_critic=penalty_critic,
        opt_generator=opt_generator,
        opt_critic=opt_critic,
        rand=BatchRandom(rng, processes.rank, processes.world, str(device)),
        processes=processes,
        local_batch=config.batch_size // processes.world,
        autocast=autocast,
        scaler_critic=scalers[0],
        scaler_generator=scalers[1],
        window=torch.zeros(4, device=device),
    )
    return parts, notes


def train(
    config: TrainConfig,
    run_dir: Path,
    *,
    data: datasets.DataSource | None = None,
    resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], int | None] | None = None,
) -> dict[str, Any]:
    """Train for ``config.iters`` generator iterations, writing the run folder.

    ``config`` must be validated and resolved (``resolve``). ``should_stop`` returns a
    signal number when the run must end: the loop finishes the current iteration,
    writes a checkpoint and raises ``Interrupted`` with exit code 128 + signal.
    Returns the summary written to summary.json.
    """
    report = on_progress or (lambda progress: None)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    processes = distributed.setup(config.device)
    parts = None
    try:
        data = data or datasets.load(config.data, **_data_options(config))
        parts, notes = build_parts(config, data, processes)
        for note in notes:
            report(Progress(0, config.iters, message=note))
        summary = _loop(config, parts, RunFolder(run_dir), resume, report, should_stop)
        # Rank 0 writes the last files after the last collective; the others wait for it
        # so no process tears the group down while a peer still holds it.
        distributed.wait_for_all(processes)
        return summary
    except BaseException as error:
        # The failed call's frames hold the DDP wrappers; free them with the group below.
        traceback.clear_frames(error.__traceback__)
        raise
    finally:
        # DDP keeps the process group and its last work handles alive. Left to interpreter
        # exit, gloo's worker threads can abort a finished process (SIGABRT), so free
        # them now, while the interpreter is whole, then destroy the group.
        del parts
        gc.collect()
        distributed.teardown(processes)


def _data_options(config: TrainConfig) -> dict[str, Any]:
    return {
        "image_size": config.image_size,
        "channels": config.channels,
        "seq_len": config.seq_len,
        "seed": config.seed,
    }


def _loop(
    config: TrainConfig,
    parts: Parts,
    run: RunFolder,
    resume: bool,
    report: Callable[[Progress], None],
    should_stop: Callable[[], int | None] | None,
) -> dict[str, Any]:
    main = parts.processes.is_main
    start = 0
    rollbacks = 0
    lr_scale = 1.0
    seconds_before = 0.0
    if resume:
        state = load_checkpoint(run.last)
        restore(parts, state, run.last)
        start = int(state["iteration"])
        rollbacks = int(state.get("rollbacks", 0))
        lr_scale = float(state.get("lr_scale", 1.0))
        seconds_before = float(state.get("seconds", 0.0))
        _set_lr_scale(parts, lr_scale)
        if main:
            run.truncate_logs(start)
    elif main:
        run.create()
        atomic_write_text(run.config, dump_toml(config))
        for path in (run.metrics, run.timing):
            atomic_write_text(path, "")

    def bookkeeping() -> dict[str, Any]:
        return {"rollbacks": rollbacks, "lr_scale": lr_scale, "seconds": time.perf_counter() - t0}

    eval_z = _eval_noise(config, parts.data.family, parts.processes.device)
    t0 = time.perf_counter() - seconds_before
    good = snapshot(parts, start, bookkeeping())
    last_metrics: dict[str, float] = {}
    window_t0, window_start = time.perf_counter(), start

    iteration = start
    while iteration < config.iters:
        if config.schedule == "one-step":
            one_step_update(parts)
        else:
            for _ in range(config.n_critic):
                critic_update(parts)
            generator_update(parts)
        iteration += 1
        last = iteration == config.iters
        log_step = iteration % config.log_every == 0 or last
        signum = should_stop() if should_stop is not None else None
        if parts.processes.world > 1:
            # Every process must stop at the same iteration; agreeing costs a host sync,
            # so it happens on log steps only (a received signal stays pending until then).
            signum = distributed.agree_on_signal(signum, parts.processes) if log_step else None
        # The guard also runs before every checkpoint, so none ever holds a NaN.
        saving = signum is not None or iteration % config.checkpoint_every == 0

        metrics = None
        if log_step or saving:
            if not _finite(parts):
                if config.on_nan == "rollback" and rollbacks < config.max_rollbacks:
                    rollbacks += 1
                    lr_scale *= 0.5
                    restore(parts, good, run.last)
                    iteration = int(good["iteration"])
                    _set_lr_scale(parts, lr_scale)
                    report(
                        Progress(
                            iteration,
                            config.iters,
                            message=f"non-finite values: rolled back to iteration {iteration}, "
                            f"learning rate x{lr_scale:g} (rollback {rollbacks}/"
                            f"{config.max_rollbacks})",
                        )
                    )
                    continue
                good_iteration = int(good["iteration"])
                if main:
                    save_checkpoint(run.last, good)
                raise DivergenceError(
                    f"training diverged (non-finite loss or weights) between iterations "
                    f"{good_iteration} and {iteration}; last good state saved at iteration "
                    f"{good_iteration} in {run.last}; lower --lr, raise --lambda, or use "
                    "--on-nan rollback"
                )
        if log_step:
            metrics = measure(parts, iteration, eval_z)
            parts.window.zero_()
            now = time.perf_counter()
            timing = {
                "step": iteration,
                "seconds": round(now - t0, 4),
                "seconds_per_iter": round((now - window_t0) / (iteration - window_start), 6),
            }
            window_t0, window_start = now, iteration
            if main:
                run.append_jsonl(run.metrics, metrics)
                run.append_jsonl(run.timing, timing)
            last_metrics = {**metrics, **timing}
            good = snapshot(parts, iteration, bookkeeping())

        if main and (iteration % config.sample_every == 0 or last):
            with torch.no_grad():
                parts.data.save_samples(
                    parts.generator(eval_z[: config.eval_samples]),
                    run.sample_path(iteration),
                    parts.critic,
                )
        if main and (iteration % config.checkpoint_every == 0 or last):
            state = snapshot(parts, iteration, bookkeeping())
            save_checkpoint(run.last, state)
            save_checkpoint(run.numbered_checkpoint(iteration), state)
            run.prune_checkpoints(config.keep)
        report(Progress(iteration, config.iters, metrics))

        if signum is not None and not last:
            if main:
                save_checkpoint(run.last, snapshot(parts, iteration, bookkeeping()))
            raise Interrupted(
                f"stopped at iteration {iteration}/{config.iters}; checkpoint in {run.last}; "
                f"resume with: lipgan train --resume {shlex.quote(str(run.root))}",
                exit_code=128 + signum,
            )

    seconds = time.perf_counter() - t0
    summary = summarize(last_metrics, seconds, config.iters, rollbacks)
    if main:
        atomic_write_text(run.summary, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def summarize(
    metrics: dict[str, float], seconds: float, iters: int, rollbacks: int
) -> dict[str, Any]:
    """The flat final summary: every ``quality/x`` also as plain ``x`` (w1, modes ...)."""
    summary: dict[str, Any] = {
        key.removeprefix("quality/"): value
        for key, value in metrics.items()
        if key.startswith("quality/")
    }
    summary.update({k: v for k, v in metrics.items() if k not in ("seconds", "seconds_per_iter")})
    summary["seconds"] = round(seconds, 3)
    summary["seconds_per_iter"] = round(seconds / max(iters, 1), 6)
    summary["rollbacks"] = rollbacks
    return summary
