"""lookalike.likeness: the reading of a cosine score as a likeness percentage, and its fit to scores."""

from __future__ import annotations

import numpy as np
import pytest


def test_likeness_reads_look_alikes_as_the_matches_they_are():
    from lookalike.likeness import DEFAULT, PUBLISHED_DIFFERENT, PUBLISHED_SAME, fit_likeness

    reads = [DEFAULT(c) for c in np.linspace(-1, 1, 201)]
    assert reads == sorted(reads) and reads[0] == 0 and reads[-1] == pytest.approx(100)
    assert DEFAULT(float(np.median(PUBLISHED_DIFFERENT))) < 15  # strangers read low
    assert 60 <= DEFAULT(0.6) <= 80  # a typical best look-alike of another person (infer.ipynb: 0.51-0.69)
    assert DEFAULT(0.36) < DEFAULT(0.6) and DEFAULT(float(np.median(PUBLISHED_SAME))) > 88
    assert DEFAULT.cosine_for(DEFAULT(0.42)) == pytest.approx(0.42, abs=1e-6)
    fitted = fit_likeness([0.7, 0.8, 0.9], [-0.1, 0.0, 0.1, 0.2])
    assert fitted.same_median == 0.8 and fitted.different_median == pytest.approx(0.05)
    assert 8 < fitted(0.05) < 12 and 88 < fitted(0.8) < 95  # the medians read about 10 % and 90 %
    with pytest.raises(ValueError):
        fit_likeness([0.1], [0.5])
