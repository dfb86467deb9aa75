"""``lipgan compare``: every strategy on the same data and budget, then a report.

plan (what runs) -> ``lipgan.executors`` (train every run through ``engine.train``) -> examine (read
each run folder back) -> figures and report (the files). ``critic_only`` is the paper's
Fig. 2 mode; ``entry`` holds the two library entries, which take the display as an
argument.
"""

from lipgan.compare.entry import Display, QuietDisplay, run_compare, run_diagnose
from lipgan.compare.plan import CompareSetup, Entry, setup

__all__ = [
    "CompareSetup",
    "Display",
    "Entry",
    "QuietDisplay",
    "run_compare",
    "run_diagnose",
    "setup",
]
