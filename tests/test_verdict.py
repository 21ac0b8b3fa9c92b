"""The verdict shape every test writes (audit.metrics.verdict)."""

from __future__ import annotations

import numpy as np
import pytest

from audit.metrics.verdict import Verdict, empirical_p_value


def make(p, **kw):
    return Verdict(test="t", title="t", hypothesis="H0", p_value=p, alpha=0.05, finding="skewed",
                   null_finding="consistent with real", **kw)


def test_states_and_text():
    assert make(0.01, key_number="class 3 at 2.5x").text == "skewed: class 3 at 2.5x"
    assert make(0.01).state == "flagged" and make(0.05).state == "not flagged"  # p < alpha rejects
    assert make(0.2).text == "consistent with real"
    undefined = make(None, reason="no confident samples")
    assert undefined.rejected is None and undefined.text == "undefined: no confident samples"
    assert make(0.5, interval=(1, 2)).to_json()["interval"] == [1.0, 2.0]


def test_invalid_verdicts_are_refused():
    with pytest.raises(ValueError):
        make(None)  # a missing p-value needs a reason
    with pytest.raises(ValueError):
        make(1.5)
    with pytest.raises(ValueError):
        Verdict(test="t", title="t", hypothesis="H0", p_value=0.5, alpha=1.0, finding="a", null_finding="b")


def test_empirical_p_value_by_hand():
    null = np.array([0.1, 0.2, 0.3, 0.4])
    assert empirical_p_value(0.35, null) == pytest.approx(2 / 5)  # (1 + 1) / (1 + 4)
    assert empirical_p_value(0.05, null) == 1.0
    assert empirical_p_value(np.inf, null) == pytest.approx(1 / 5)
    with pytest.raises(ValueError):
        empirical_p_value(np.nan, null)


def test_empirical_p_value_is_uniform_under_h0():
    # exchangeable statistic and null draws: P(p <= alpha) <= alpha, measured over 4,000 tests
    rng = np.random.default_rng(0)
    p = np.array([empirical_p_value(rng.normal(), rng.normal(size=99)) for _ in range(4000)])
    for alpha in (0.01, 0.05, 0.1):
        assert np.mean(p <= alpha) <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / p.size)
