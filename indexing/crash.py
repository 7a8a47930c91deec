"""Named points of the write path where a test can make the indexer kill itself (SIGKILL).

A test hook, not a setting: ``LOOKALIKE_TEST_CRASH_AT=<point>[:<n>]`` makes the process send itself
SIGKILL the ``n``-th time (default 1) it reaches ``<point>``, so the crash-and-resume test hits exact
places of the write path instead of random moments. The points, in the order a run reaches them:

- ``after_upsert``: a batch of points was written (``:2`` after the second batch);
- ``before_person_pass``: every photo is written, the person-level pass has not started;
- ``before_alias_switch``: the person pass is done, the alias still points at the old version;
- ``alias_switch``: the alias was moved, older versions are not yet dropped.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

CRASH_VARIABLE = "LOOKALIKE_TEST_CRASH_AT"
POINTS = ("after_upsert", "before_person_pass", "before_alias_switch", "alias_switch")

_reached: Counter = Counter()


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if the test hook names this point (and its count is reached)."""
    spec = os.environ.get(CRASH_VARIABLE)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
