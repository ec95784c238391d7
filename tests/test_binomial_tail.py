"""The event-pair matcher's chance of pairs by coincidence, against SciPy's binomial survival function."""

import pytest
from scipy.stats import binom

from pipeline.analysis.event_pairs import binomial_tail


@pytest.mark.parametrize("trials", [1, 7, 40, 300])
def test_binomial_tail_equals_scipy(trials):
    for probability in (0.0, 1e-4, 0.03, 0.2, 0.5, 0.9, 1.0):
        for at_least in sorted({0, 1, 2, trials // 3, trials // 2, trials - 1, trials, trials + 1}):
            expected = float(binom.sf(at_least - 1, trials, probability))
            assert binomial_tail(at_least, trials, probability) == pytest.approx(expected, rel=1e-9, abs=1e-300)
