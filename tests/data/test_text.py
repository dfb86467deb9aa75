"""Text data: vocabulary, one-hot windows, n-gram JS metrics, samples, one-line errors."""

from __future__ import annotations

import math

import pytest
import torch

from lipgan import data as datasets
from lipgan.constraints.base import BatchRandom
from lipgan.data.text import UNKNOWN, TextData, Vocabulary, load_text
from lipgan.errors import DataError
from lipgan.quality import js_divergence, ngram_counts

SENTENCE = "the quick brown fox jumps over the lazy dog. "


def test_vocabulary_round_trip():
    vocab = Vocabulary.from_text(SENTENCE * 3)
    assert vocab.chars == "".join(sorted(set(SENTENCE)))
    codes = vocab.encode("lazy fox")
    assert codes.dtype == torch.long and vocab.decode(codes) == "lazy fox"
    with pytest.raises(ValueError, match="'Z'"):
        vocab.encode("Z")


def test_vocabulary_caps_rare_characters():
    text = "".join(chr(0x100 + i) * (1 + i % 3) for i in range(300))
    vocab = Vocabulary.from_text(text)
    assert len(vocab) == 256 and vocab.chars.endswith(UNKNOWN)
    rare = chr(0x100 + 297)  # occurs once, last in tie order: dropped
    assert vocab.decode(vocab.encode(rare)) == UNKNOWN


def test_load_normalises_and_draws_one_hot(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text((SENTENCE + "\n\n  ") * 20, encoding="utf-8")
    d = datasets.load(f"text:{path}", image_size=None, channels=None, seq_len=8, seed=0)
    assert isinstance(d, TextData)
    assert d.family == "text" and d.shape == (8, len(d.vocab))
    assert "\n" not in d.vocab.chars and "  " not in d.train_text
    x = d.draw(BatchRandom(torch.Generator().manual_seed(1)), 20)
    assert x.shape == (20, 8, len(d.vocab))
    torch.testing.assert_close(x.sum(-1), torch.ones(20, 8))
    assert set(x.unique().tolist()) == {0.0, 1.0}
    for s in d.vocab.decode_batch(x):
        assert s in d.train_text
    assert len(d.heldout_text) == len(SENTENCE.strip() * 0 + d.train_text + d.heldout_text) // 10


def test_ngram_counts():
    assert ngram_counts(["abcab", "ab"], 2) == {"ab": 3, "bc": 1, "ca": 1}
    assert ngram_counts(["abc"], 4) == {}


def test_js_closed_forms():
    p = {"a": 2, "b": 5}
    assert js_divergence(p, {"a": 4, "b": 10}) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence({"a": 1}, {"b": 3}) == pytest.approx(math.log(2), abs=1e-12)
    # p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4)
    expected = 0.5 * math.log(4 / 3) + 0.5 * (0.5 * math.log(2 / 3) + 0.5 * math.log(2))
    assert js_divergence({"a": 1}, {"a": 1, "b": 1}) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(js_divergence({}, {"a": 1}))


def test_evaluate_real_windows_score_the_floor(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"{w} " for w in SENTENCE.split() * 40), encoding="utf-8")
    d = load_text(str(path), {"seq_len": 16})
    seed, n = 5, 64
    starts = torch.randint(len(d.codes) - 15, (n,), generator=torch.Generator().manual_seed(seed))
    real = d.windows(starts, d.codes)
    metrics = d.evaluate(real, seed)
    for k in (1, 2, 3, 4):
        assert metrics[f"quality/js{k}"] == metrics[f"quality/js{k}_floor"]
        assert metrics[f"quality/js{k}"] < 0.1
    garbage = torch.nn.functional.one_hot(torch.zeros(n, 16, dtype=torch.long), len(d.vocab))
    bad = d.evaluate(garbage.float(), seed)
    # all-space (the first vocab char) shares no 2-gram with the text: JS is ln 2
    assert d.vocab.chars[0] == " "
    assert bad["quality/js2"] == pytest.approx(math.log(2))


def test_samples_written_and_restored_from_meta(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(SENTENCE * 30, encoding="utf-8")
    d = load_text(str(path), {"seq_len": 10})
    meta = d.meta()
    assert meta["vocab"] == d.vocab.chars and meta["shape"] == [10, len(d.vocab)]
    source = datasets.restore(meta)
    fake = d.draw(BatchRandom(torch.Generator().manual_seed(0)), 3)
    written = source.save_samples(fake, tmp_path / "samples" / "step_000010")
    assert written.name == "step_000010.txt"
    assert written.read_text(encoding="utf-8").splitlines() == d.vocab.decode_batch(fake)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"caf\xe9 au lait " * 100, "is not UTF-8 \\(byte 3\\)"),
        (b"", "is empty"),
        (b" \n\t \n", "is empty"),
        (b"too short", "holds 9 characters; --seq-len 32 needs at least 320"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"bad.txt {message}"):
        load_text(str(path), {"seq_len": 32})


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nothere.txt does not exist"):
        datasets.load(f"text:{tmp_path / 'nothere.txt'}", seq_len=32)
