"""Write the English text corpus the text measurements in docs/results.md use.

Usage:  python benchmarks/text_corpus.py OUT.txt [--chars 200000]

The text is CPython's own documentation topics (``pydoc_data.topics``, shipped with every
Python: English prose about the language, with some code), topics in sorted order, so the
same Python version writes the same file on any machine with no download.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path


def corpus(chars: int) -> str:
    from pydoc_data.topics import topics

    text = "\n".join(topics[name] for name in sorted(topics))
    return text[:chars]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--chars", type=int, default=200_000)
    args = parser.parse_args()
    text = corpus(args.chars)
    args.out.write_text(text, encoding="utf-8")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    print(f"wrote {len(text)} characters to {args.out} (Python {sys.version.split()[0]}, "
          f"sha256 {digest})")  # fmt: skip


if __name__ == "__main__":
    main()
