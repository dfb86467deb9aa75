"""Character-level text, as in the paper's language model.

The file is read as UTF-8, every run of whitespace becomes one space, and the
characters form the vocabulary (the most frequent 255 and an unknown mark when there
are more). A real sample is a window of ``seq_len`` consecutive characters of the
first 90% of the text, one-hot: shape (seq_len, vocab), the same layout the generator
emits (a softmax over the vocabulary at every position). The last 10% is held out for
the n-gram Jensen-Shannon divergences ``quality/js1``..``quality/js4``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipgan.batch_random import BatchRandom
from lipgan.errors import DataError
from lipgan.quality import js_divergence, ngram_counts
from lipgan.runio import atomic_write_text

MAX_VOCAB = 256
UNKNOWN = "\ufffd"
NGRAMS = (1, 2, 3, 4)
MIN_WINDOWS = 10  # the text must hold at least this many windows of seq_len


class Vocabulary:
    """Characters <-> indices; characters outside the vocabulary map to UNKNOWN."""

    def __init__(self, chars: str) -> None:
        if len(set(chars)) != len(chars) or not chars:
            raise ValueError("a vocabulary is a non-empty string of distinct characters")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        counts: dict[str, int] = {}
        for c in text:
            counts[c] = counts.get(c, 0) + 1
        if len(counts) <= MAX_VOCAB:
            return cls("".join(sorted(counts)))
        common = sorted(counts, key=lambda c: (-counts[c], c))[: MAX_VOCAB - 1]
        return cls("".join(sorted(common)) + UNKNOWN)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        unknown = self.index.get(UNKNOWN, -1)
        codes = [self.index.get(c, unknown) for c in text]
        if -1 in codes:
            missing = next(c for c, i in zip(text, codes, strict=True) if i == -1)
            raise ValueError(f"character {missing!r} is not in the vocabulary")
        return torch.tensor(codes, dtype=torch.long)

    def decode(self, codes: Tensor) -> str:
        return "".join(map(self.chars.__getitem__, codes.tolist()))

    def decode_batch(self, samples: Tensor) -> list[str]:
        """(n, seq_len, vocab) scores or probabilities -> n strings by argmax."""
        chars = self.chars
        rows = samples.detach().argmax(dim=-1).cpu().tolist()
        return ["".join(map(chars.__getitem__, row)) for row in rows]


def normalise(text: str) -> str:
    """Every run of whitespace (newlines included) as one space, ends stripped."""
    return re.sub(r"\s+", " ", text).strip()


class TextSamples:
    """Writes argmax-decoded samples; what ``restore`` rebuilds from meta alone."""

    family = "text"

    def __init__(self, name: str, vocab: Vocabulary, seq_len: int) -> None:
        self.name = name
        self.vocab = vocab
        self.seq_len = seq_len
        self.shape = (seq_len, len(vocab))

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> TextSamples:
        return cls(str(meta.get("name", "text")), Vocabulary(meta["vocab"]), int(meta["shape"][0]))

    def draw(self, rand: BatchRandom, n: int) -> Tensor:
        raise DataError(f"{self.name}: a restored source has no text; load the data again")

    def evaluate(self, fake: Tensor, seed: int, sets: int = 1) -> dict[str, float]:
        return {}

    def save_samples(self, fake: Tensor, path: Path, critic: nn.Module | None = None) -> Path:
        """One decoded sample per line, ``path`` + .txt."""
        path = Path(path).with_suffix(".txt")
        atomic_write_text(path, "".join(s + "\n" for s in self.vocab.decode_batch(fake)))
        return path

    def meta(self) -> dict[str, Any]:
        return {
            "kind": "text",
            "name": self.name,
            "family": "text",
            "shape": list(self.shape),
            "vocab": self.vocab.chars,
        }


class TextData(TextSamples):
    """Windows of a text file, one-hot; the last 10% held out for n-gram metrics."""

    def __init__(self, name: str, text: str, seq_len: int) -> None:
        super().__init__(name, Vocabulary.from_text(text), seq_len)
        cut = len(text) - len(text) // 10
        self.train_text, self.heldout_text = text[:cut], text[cut:]
        self.codes = self.vocab.encode(self.train_text)
        self._on_device: dict[torch.device, Tensor] = {}
        self._heldout_counts = [ngram_counts([self.heldout_text], n) for n in NGRAMS]
        self._floors: dict[tuple[int, int], dict[str, float]] = {}

    def windows(self, starts: Tensor, codes: Tensor) -> Tensor:
        """One-hot windows (n, seq_len, vocab) starting at ``starts``."""
        index = starts[:, None] + torch.arange(self.seq_len, device=starts.device)
        return F.one_hot(codes[index], len(self.vocab)).float()

    def draw(self, rand: BatchRandom, n: int) -> Tensor:
        if rand.device not in self._on_device:
            self._on_device[rand.device] = self.codes.to(rand.device)
        codes = self._on_device[rand.device]
        return self.windows(rand.integers(n, len(codes) - self.seq_len + 1), codes)

    def scores(self, strings: list[str]) -> dict[str, float]:
        """JS divergence (nats) of the strings' n-grams to the held-out text's, n = 1..4."""
        return {
            f"quality/js{n}": js_divergence(ngram_counts(strings, n), held)
            for n, held in zip(NGRAMS, self._heldout_counts, strict=True)
        }

    def evaluate(self, fake: Tensor, seed: int, sets: int = 1) -> dict[str, float]:
        """js1..js4 of the samples and, as noise floors, of as many real training windows."""
        n = fake.shape[0]
        if (n, seed) not in self._floors:
            g = torch.Generator().manual_seed(seed)
            starts = torch.randint(len(self.codes) - self.seq_len + 1, (n,), generator=g)
            real = self.vocab.decode_batch(self.windows(starts, self.codes))
            self._floors[n, seed] = {f"{k}_floor": v for k, v in self.scores(real).items()}
        if not torch.isfinite(fake).all():
            return {f"quality/js{n}": float("nan") for n in NGRAMS} | self._floors[n, seed]
        return self.scores(self.vocab.decode_batch(fake)) | self._floors[n, seed]


def load_text(arg: str, options: dict[str, Any]) -> TextData:
    """``text:FILE``: a UTF-8 text file of at least 10 windows of ``seq_len`` characters."""
    seq_len = int(options.get("seq_len") or 32)
    path = Path(arg).expanduser()
    if not arg:
        raise DataError("text: needs a file, e.g. --data text:corpus.txt")
    if not path.is_file():
        raise DataError(f"text file {path} does not exist; check the path")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"text file {path} cannot be read ({exc.strerror or exc})") from None
    try:
        text = normalise(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(
            f"text file {path} is not UTF-8 (byte {exc.start}); convert it, e.g. with iconv"
        ) from None
    if not text:
        raise DataError(f"text file {path} is empty; it needs some text")
    needed = MIN_WINDOWS * seq_len
    if len(text) < needed:
        raise DataError(
            f"text file {path} holds {len(text)} characters; --seq-len {seq_len} needs at "
            f"least {needed}: use a longer file or a shorter --seq-len"
        )
    return TextData(f"text:{path}", text, seq_len)
