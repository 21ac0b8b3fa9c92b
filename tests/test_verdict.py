"""The verdict shape every test writes (audit.metrics.verdict)."""

from __future__ import annotations

import numpy as np
import pytest

from audit.metrics.verdict import Verdict, adjust_family, empirical_p_value, holm


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


def test_holm_by_hand():
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> max(0.06, 0.04)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_a_family_is_decided_on_its_adjusted_p_values():
    family = [make(0.034, key_number="class 3 at 1.2x").to_json(), make(1e-6, key_number="~357").to_json(),
              make(None, reason="no samples").to_json(), make(0.02).to_json()]
    decided = adjust_family(family)
    # Holm over the three defined p-values: 1e-6 x 3, then 0.02 x 2 = 0.04 (< 0.05), then 0.034 -> 0.04
    assert [d["p_value"] for d in decided] == pytest.approx([0.04, 3e-6, None, 0.04], nan_ok=True)
    assert [d["p_single"] for d in decided] == [0.034, 1e-6, None, 0.02]
    assert [d["state"] for d in decided] == ["flagged", "flagged", "undefined", "flagged"]
    decided = adjust_family([make(0.034, key_number="class 3 at 1.2x").to_json(), make(1e-6).to_json(),
                             make(0.03).to_json()])
    # 1e-6 x 3; then 0.03 x 2 = 0.06 stops the step-down: neither 0.03 nor 0.034 is flagged
    assert [d["state"] for d in decided] == ["not flagged", "flagged", "not flagged"]
    assert decided[0]["text"] == "consistent with real: class 3 at 1.2x" and decided[0]["rejected"] is False
    assert family[0]["state"] == "flagged"  # the stage's own verdict is left as it was


@pytest.mark.parametrize("dependence", ["independent", "identical", "half identical"])
def test_a_family_of_true_nulls_is_flagged_at_most_at_alpha(dependence):
    # 8 tests with valid p-values (uniform under H0), 20,000 families: each decided alone, some test
    # flags a perfect GAN in up to 1 - 0.95^8 = 34% of families; decided together, in at most 5%
    rng = np.random.default_rng(1)
    p = rng.uniform(size=(20_000, 8))
    if dependence == "identical":
        p[:] = p[:, :1]
    elif dependence == "half identical":
        p[:, 4:] = p[:, :1]
    alone = np.mean((p < 0.05).any(axis=1))
    together = np.mean([any(d["rejected"] for d in adjust_family([make(float(q)).to_json() for q in row]))
                        for row in p[:5000]])
    se = np.sqrt(0.05 * 0.95 / 5000)
    assert together <= 0.05 + 3 * se, together
    if dependence == "independent":
        # under the global null Holm rejects only through its first step, min p < alpha / 8:
        # 1 - (1 - 0.05 / 8)^8 = 0.0489
        assert alone == pytest.approx(1 - 0.95 ** 8, abs=3 * np.sqrt(0.34 * 0.66 / p.shape[0]))
        assert together == pytest.approx(1 - (1 - 0.05 / 8) ** 8, abs=3 * se)
