"""The run folder on disk: atomic writes, checkpoints that load no code, metric logs.

Layout of a run folder::

    config.toml            the complete resolved config
    metrics.jsonl          one JSON object per log step (deterministic: same seed, same file)
    timing.jsonl           wall-clock per log step (kept apart so metrics.jsonl is reproducible)
    samples/step_XXXXXX.*  pictures (or text) of generated samples
    checkpoints/last.pt    the newest checkpoint; step_XXXXXX.pt the numbered ones
    summary.json           final metrics, one flat object
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pickle
import re
import tempfile
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from lipgan.errors import CheckpointError, ConfigError, LipganError

CHECKPOINT_FORMAT = 1


def _write_error(path: Path, exc: OSError) -> LipganError:
    reason = exc.strerror or str(exc)
    return LipganError(
        f"cannot write {path}: {reason}; free disk space or choose another --out folder"
    )


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over ``path``.

    A crash at any point leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save into memory, then one atomic write."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


# What every training checkpoint holds; ``load_checkpoint`` refuses one without them.
CHECKPOINT_KEYS = ("config", "data", "iteration", "generator", "critic")


def load_checkpoint(path: Path, required: tuple[str, ...] = CHECKPOINT_KEYS) -> dict[str, Any]:
    """Load with ``weights_only=True``: tensors and plain data only, never code.

    A file that would import anything (a crafted pickle) is refused before any of it
    runs; a truncated, empty or foreign file is reported as corrupt. Either way the
    message is one line.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the run folder")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it reads
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if unsafe:
            name = unsafe.group(1).rstrip(".")
            raise CheckpointError(
                f"checkpoint {path} was refused: it asks to import {name}, which a lipgan "
                "checkpoint (tensors and plain data) never does; nothing in it was run. "
                "Only use checkpoints you trust"
            ) from None
        raise CheckpointError(_corrupt(path, exc)) from None
    except Exception as exc:  # torch raises many types for a torn or foreign file
        raise CheckpointError(_corrupt(path, exc)) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a lipgan checkpoint (format {CHECKPOINT_FORMAT}); "
            "use checkpoints/last.pt of a run folder"
        )
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is incomplete: no {missing[0]!r}; "
            "use checkpoints/last.pt of a run folder"
        )
    return state


def _corrupt(path: Path, exc: Exception) -> str:
    if path.stat().st_size == 0:
        detail = "the file is empty"
    else:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        # torch's weights-only errors open with boilerplate; the specific line is later.
        specific = [ln for ln in lines if not ln.startswith(("Weights only", "Please file"))]
        detail = (specific or lines or [""])[0][:120]
        if not isinstance(exc, pickle.UnpicklingError):
            detail = f"{type(exc).__name__}: {detail}".rstrip(": ")
    return (
        f"checkpoint {path} is corrupt or not a checkpoint ({detail}); "
        "use a numbered checkpoint from the same folder or start anew"
    )


def load_state(module: torch.nn.Module, state: dict[str, Any], what: str, path: Path) -> None:
    """load_state_dict that names the mismatch in one line."""
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds no {what} weights; it is not a lipgan run")
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = (lines[1] if len(lines) > 1 else lines[0]).rstrip(".")
        raise CheckpointError(
            f"checkpoint {path} does not fit this {what}: {detail[:200]}; "
            "use the config saved with the checkpoint"
        ) from None


class RunFolder:
    """Paths of one run and the append-only logs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.toml"
        self.metrics = self.root / "metrics.jsonl"
        self.timing = self.root / "timing.jsonl"
        self.summary = self.root / "summary.json"
        self.samples = self.root / "samples"
        self.checkpoints = self.root / "checkpoints"
        self.last = self.checkpoints / "last.pt"

    def create(self) -> None:
        try:
            self.samples.mkdir(parents=True, exist_ok=True)
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise LipganError(
                f"cannot write to {self.root}: {exc.strerror or exc}; "
                "choose a writable --out folder"
            ) from None

    def numbered_checkpoint(self, iteration: int) -> Path:
        return self.checkpoints / f"step_{iteration:06d}.pt"

    def sample_path(self, iteration: int) -> Path:
        return self.samples / f"step_{iteration:06d}"

    def append_jsonl(self, path: Path, record: dict[str, Any]) -> None:
        try:
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
        except OSError as exc:
            raise _write_error(path, exc) from None

    def truncate_logs(self, iteration: int) -> None:
        """Drop log lines after ``iteration`` (on resume from a checkpoint taken there).

        A torn last line (a crash or a full disk mid-append) is dropped too.
        """
        for path in (self.metrics, self.timing):
            if not path.exists():
                continue
            kept = [
                line
                for line, record in _records(path)
                if record is not None and record.get("step", 0) <= iteration
            ]
            atomic_write_text(path, "".join(line + "\n" for line in kept))

    def prune_checkpoints(self, keep: int) -> None:
        """Delete all but the ``keep`` newest numbered checkpoints (by step, not by name)."""
        numbered = sorted(
            (int(m.group(1)), p)
            for p in self.checkpoints.glob("step_*.pt")
            if (m := re.fullmatch(r"step_(\d+)\.pt", p.name))
        )
        for _, old in numbered[: max(len(numbered) - keep, 0)]:
            old.unlink(missing_ok=True)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The logged metrics, skipping a torn last line."""
        if not self.metrics.exists():
            return []
        return [record for _, record in _records(self.metrics) if record is not None]

    def read_timing(self) -> list[dict[str, Any]]:
        """The logged wall-clock times, skipping a torn last line (a killed writer)."""
        if not self.timing.exists():
            return []
        return [record for _, record in _records(self.timing) if record is not None]


def _records(path: Path) -> list[tuple[str, dict[str, Any] | None]]:
    """(line, parsed object or None when the line is not a JSON object) per non-blank line."""
    out: list[tuple[str, dict[str, Any] | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        out.append((line, record if isinstance(record, dict) else None))
    return out


# --- naming and claiming a folder ----------------------------------------------------------


LOCK_FILE = ".lipgan.lock"


class FolderLock:
    """This process's exclusive claim on a folder: ``flock`` on a file in it, which the
    kernel releases when the process ends, however it ends (a crash leaves nothing stuck).
    The file keeps the holder's pid, for the message a second claimant gets."""

    def __init__(self, folder: Path, what: str) -> None:
        path = Path(folder) / LOCK_FILE
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _write_error(path, exc) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            self.release()
            raise ConfigError(
                f"{folder} is in use by another lipgan {what} (pid {holder}); wait for it to "
                "end or choose another folder"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the lock
            self._fd = None


def default_folder(parent: str, kind: str, data: str, seed: int) -> Path:
    """parent/<kind>__<data>__s<seed>__<time>: a new folder's name says what it holds."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    data = data.replace("/", "_").replace(":", "-")[:40]
    return Path(parent) / f"{kind}__{data}__s{seed}__{stamp}"


def is_run_folder(folder: Path) -> bool:
    """A folder lipgan wrote: only such a folder may be deleted by --overwrite."""
    run = RunFolder(folder)
    return run.config.is_file() and run.metrics.is_file()


def check_writable(run_dir: Path) -> None:
    """Refuse an --out that cannot be created or written, before anything is trained.

    Probes the folder itself or, when it does not exist yet, its nearest existing
    parent (creating nothing that stays behind).
    """
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"--out {run_dir} cannot be created: {existing} is a file; choose another folder"
        )
    try:
        with tempfile.TemporaryDirectory(dir=existing, prefix=".lipgan-write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--out {run_dir} is not writable ({exc.strerror or exc}); choose a writable folder"
        ) from None
