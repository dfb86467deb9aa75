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

import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from lipgan.errors import CheckpointError, LipganError

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


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with ``weights_only=True``: tensors and plain data only, never code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the run folder")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        raise CheckpointError(
            f"checkpoint {path} was refused: it holds more than tensors and plain data "
            f"({first[:120]}); only load checkpoints you trust, written by lipgan"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a checkpoint ({str(exc)[:120]})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a lipgan checkpoint (format 1)")
    return state


def load_state(module: torch.nn.Module, state: dict[str, Any], what: str, path: Path) -> None:
    """load_state_dict that names the mismatch in one line."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
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
        """Drop log lines after ``iteration`` (on resume from a checkpoint taken there)."""
        for path in (self.metrics, self.timing):
            if not path.exists():
                continue
            kept = [
                line
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= iteration
            ]
            atomic_write_text(path, "".join(line + "\n" for line in kept))

    def prune_checkpoints(self, keep: int) -> None:
        numbered = sorted(self.checkpoints.glob("step_*.pt"))
        for old in numbered[:-keep]:
            old.unlink(missing_ok=True)

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.exists():
            return []
        return [
            json.loads(line)
            for line in self.metrics.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
