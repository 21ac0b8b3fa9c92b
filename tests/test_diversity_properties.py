"""Property-based tests (hypothesis) of the n_equiv interpolation and its censoring
(audit.metrics.diversity): invariance to the order of seeds, values inside the grid or
censored, monotone in the GAN accuracy, and the known limits at grid points.

Each property is checked on 200 generated cases (hypothesis shrinks a failure to the smallest
curve that breaks it); no case trains a model, so the file runs in a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.metrics import diversity as dv

SETTINGS = settings(max_examples=200, deadline=None)
accuracy = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def curves(draw, min_size: int = 2, max_size: int = 8):
    """(grid (G,) increasing positive ints, non-decreasing accuracies (G,))."""
    grid = sorted(draw(st.sets(st.integers(1, 100_000), min_size=min_size, max_size=max_size)))
    values = sorted(draw(st.lists(accuracy, min_size=len(grid), max_size=len(grid))))
    return np.array(grid, dtype=float), np.array(values)


@st.composite
def seed_matrices(draw):
    """(grid (G,), real accuracies (S, G), GAN accuracies (S',)), accuracies multiples of 1/450."""
    grid = np.array(sorted(draw(st.sets(st.integers(1, 5000), min_size=2, max_size=6))), dtype=float)
    s_real, s_gan = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    counts = st.integers(0, 450)
    real = np.array(draw(st.lists(st.lists(counts, min_size=grid.size, max_size=grid.size),
                                  min_size=s_real, max_size=s_real))) / 450
    gan = np.array(draw(st.lists(counts, min_size=s_gan, max_size=s_gan))) / 450
    return grid, real, gan


@SETTINGS
@given(seed_matrices(), st.randoms(use_true_random=False))
def test_n_equiv_does_not_depend_on_the_order_of_seeds(case, random):
    grid, real, gan = case
    before = dv.n_equiv_point(grid, real, gan)
    real_order, gan_order = list(range(len(real))), list(range(len(gan)))
    random.shuffle(real_order)
    random.shuffle(gan_order)
    after = dv.n_equiv_point(grid, real[real_order], gan[gan_order])
    assert before == after or math.isclose(before, after, rel_tol=1e-9), (before, after)


@SETTINGS
@given(curves(), accuracy)
def test_n_equiv_is_inside_the_grid_or_censored(curve, target):
    grid, values = curve
    n = dv.equivalent_sample_size(grid, values, target)
    assert n in (-math.inf, math.inf) or grid[0] * (1 - 1e-9) <= n <= grid[-1] * (1 + 1e-9), (n, grid)
    if n == -math.inf:
        assert target < values[0]
    if n == math.inf:
        assert target > values[-1]


@SETTINGS
@given(curves(min_size=3), accuracy, st.data())
def test_described_n_is_resolved_or_censored_at_the_flat_ends(curve, target, data):
    grid, values = curve
    i_high = data.draw(st.integers(0, grid.size - 1))
    i_low = data.draw(st.integers(0, i_high))
    described = dv.describe_n(dv.equivalent_sample_size(grid, values, target), grid, i_low, i_high)
    if described["censored"] is None:  # a number only on the resolved stretch
        assert grid[i_low] * (1 - 1e-9) <= described["value"] <= grid[i_high] * (1 + 1e-9)
        assert described["text"] == f"{described['value']:.0f}"
    else:
        assert described["value"] is None and described["bound"] in grid
        sign = ">" if described["censored"] == "above" else "<"
        assert described["text"] == f"{sign} {described['bound']:g}"


@SETTINGS
@given(curves(), accuracy, accuracy)
def test_n_equiv_is_monotone_in_the_gan_accuracy(curve, a, b):
    grid, values = curve
    low, high = sorted((a, b))
    assert dv.equivalent_sample_size(grid, values, low) <= dv.equivalent_sample_size(grid, values, high)


@SETTINGS
@given(curves(), st.data())
def test_a_grid_point_accuracy_gives_its_n(curve, data):
    grid, values = curve
    i = data.draw(st.integers(0, grid.size - 1))
    n = dv.equivalent_sample_size(grid, values, values[i])
    # the smallest n reaching that accuracy: n_i itself, or the left end of a flat stretch holding it
    first = int(np.argmax(values >= values[i] - 1e-12))
    assert math.isclose(n, grid[first], rel_tol=1e-9), (n, grid, values, i)
    if np.all(np.diff(values) > 1e-9):  # strictly increasing: exactly n_i
        assert math.isclose(n, grid[i], rel_tol=1e-9)


@SETTINGS
@given(seed_matrices())
def test_isotonic_fit_is_monotone_and_keeps_the_mean(case):
    _, real, _ = case
    mean = real.mean(axis=0)
    fit = dv.isotonic_increasing(mean)
    assert np.all(np.diff(fit) >= -1e-12)
    assert math.isclose(fit.sum(), mean.sum(), rel_tol=1e-9, abs_tol=1e-9)
    assert fit.min() >= mean.min() - 1e-12 and fit.max() <= mean.max() + 1e-12


@SETTINGS
@given(st.data())
def test_many_replicates_at_once_match_one_at_a_time(data):
    """The vectorised n_equiv of the bootstrap replicates (isotonic fit by the max-min formula)
    equals the one-at-a-time isotonic fit and interpolation, censoring included."""
    grid = np.array(sorted(data.draw(st.sets(st.integers(1, 5000), min_size=2, max_size=7))), dtype=float)
    rows = data.draw(st.integers(1, 6))
    curves = np.array(data.draw(st.lists(st.lists(accuracy, min_size=grid.size, max_size=grid.size),
                                         min_size=rows, max_size=rows)))
    targets = np.array(data.draw(st.lists(accuracy, min_size=rows, max_size=rows)))
    many = dv.equivalent_sample_sizes(grid, curves, targets)
    one = [dv.equivalent_sample_size(grid, dv.isotonic_increasing(c), t) for c, t in zip(curves, targets)]
    for a, b in zip(many, one):
        assert a == b or math.isclose(a, b, rel_tol=1e-9), (a, b, grid, curves, targets)
