"""GAN dynamics on a two-Gaussian mixture: exact loss/gradients, optimal D, outcomes, sweep, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from audit.dynamics import simulate
from audit.dynamics.model import gradients, loss, mixture_pdf, optimal_discriminator
from audit.dynamics.simulate import (FIGURE_1, FIGURE_2, OUTCOMES, classify, first_order_dynamics, generator_gradient,
                                     optimal_dynamics, project_ends, run_figure, sample_initial, sweep,
                                     wilson_interval)
from audit.io import AuditInputError


def _random_states(rng, n):
    mu = rng.uniform(-3, 3, size=(n, 2))
    mu_star = rng.uniform(-3, 3, size=(n, 2))
    ends = np.sort(rng.uniform(-4, 4, size=(n, 4)), axis=1)
    return mu, ends, mu_star


def test_loss_and_gradients_match_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    mu, ends, mu_star = _random_states(rng, 64)
    ends[0] = [-np.inf, -1.0, 0.5, np.inf]  # the optimal D can be unbounded
    mu_t = torch.tensor(mu, dtype=torch.float64, requires_grad=True)
    ends_t = torch.tensor(ends, dtype=torch.float64, requires_grad=True)
    star_t = torch.tensor(mu_star, dtype=torch.float64)

    def mass(means):
        cdf = 0.5 * (torch.special.ndtr(ends_t - means[:, :1]) + torch.special.ndtr(ends_t - means[:, 1:]))
        return cdf[:, 1] - cdf[:, 0] + cdf[:, 3] - cdf[:, 2]

    loss_t = 1 + mass(star_t) - mass(mu_t)
    loss_t.sum().backward()
    grad_mu, grad_ends = gradients(mu, ends, mu_star)
    np.testing.assert_allclose(loss(mu, ends, mu_star), loss_t.detach().numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(grad_mu, mu_t.grad.numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(grad_ends[1:], ends_t.grad.numpy()[1:], rtol=0, atol=1e-14)
    np.testing.assert_allclose(grad_ends[0, 1:3], ends_t.grad.numpy()[0, 1:3], rtol=0, atol=1e-14)
    assert np.all(grad_ends[0, [0, 3]] == 0)  # an infinite end has no gradient


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    mu, ends, mu_star = _random_states(rng, 32)
    grad_mu, grad_ends = gradients(mu, ends, mu_star)
    h = 1e-6
    for k in range(2):
        step = np.zeros(2)
        step[k] = h
        numeric = (loss(mu + step, ends, mu_star) - loss(mu - step, ends, mu_star)) / (2 * h)
        np.testing.assert_allclose(grad_mu[:, k], numeric, atol=1e-8)
    for k in range(4):
        step = np.zeros(4)
        step[k] = h
        numeric = (loss(mu, ends + step, mu_star) - loss(mu, ends - step, mu_star)) / (2 * h)
        np.testing.assert_allclose(grad_ends[:, k], numeric, atol=1e-8)
    assert np.max(np.abs(grad_mu)) > 0.05  # the comparison is not between zeros


def _grid_search(mu, mu_star, grid):
    """Best L over all pairs of intervals with ends on ``grid`` (which includes +-inf), by
    enumerating every (end of interval 1, start of interval 2) pair."""
    cdf = lambda means: 0.5 * (ndtr(grid - means[0]) + ndtr(grid - means[1]))  # noqa: E731
    gap = cdf(np.asarray(mu_star)) - cdf(np.asarray(mu))  # L of [grid_i, grid_j] is 1 + gap_j - gap_i
    left_start = np.minimum.accumulate(gap)  # best l1 <= r1 = grid_j: smallest gap so far
    right_end = np.maximum.accumulate(gap[::-1])[::-1]  # best r2 >= l2 = grid_k
    first = gap - left_start  # (n,) best first interval ending at j
    second = right_end - gap  # (n,) best second interval starting at k
    pairs = first[:, None] + second[None, :]
    pairs[np.tril_indices(grid.size, -1)] = -np.inf  # need r1 <= l2
    return 1 + pairs.max()


@pytest.mark.parametrize("mu, mu_star, n_finite", [
    ((-1.2, 0.9), (-0.5, 0.5), 2),   # one bounded interval
    ((0.3, 0.5), (-2.0, 2.0), 2),    # (-inf, a) u (b, inf)
    ((-2.9, 1.8), (-2.0, 2.8), 3),   # three sign changes: [a, b] u [c, inf)
    ((2.5, -1.0), (-2.0, 2.0), 3),   # (-inf, a] u [b, c], generator means in the other order
])
def test_optimal_discriminator_beats_grid_search(mu, mu_star, n_finite):
    ends = optimal_discriminator(np.array(mu), np.array(mu_star))
    assert np.sum(np.isfinite(ends)) == n_finite
    assert np.all(ends[1:] >= ends[:-1])
    h = 0.01
    grid = np.concatenate([[-np.inf], np.arange(-8, 8 + h / 2, h), [np.inf]])
    best_on_grid = _grid_search(mu, mu_star, grid)
    optimum = float(loss(np.array(mu), ends, np.array(mu_star)))
    assert optimum >= best_on_grid - 1e-12
    assert optimum - best_on_grid < 1e-4  # a grid end is off by <= h/2, costing O(h^2)
    # The density difference changes sign at every finite end.
    for x in ends[np.isfinite(ends)]:
        below = mixture_pdf(np.array([x - 1e-6]), np.array(mu_star)) - mixture_pdf(np.array([x - 1e-6]), np.array(mu))
        above = mixture_pdf(np.array([x + 1e-6]), np.array(mu_star)) - mixture_pdf(np.array([x + 1e-6]), np.array(mu))
        assert below[0] * above[0] < 0


def _hard_cases(rng, n):
    """(mu, mu*) families where sign changes sit in the tails, pile up or nearly cancel."""
    star = rng.uniform(-3, 3, size=(n, 2))
    shared = star.copy()
    shared[:, 0] += rng.normal(size=n)
    tiny_off = star.copy()
    tiny_off[:, 0] += 1e-5 * rng.normal(size=n)
    return {
        "uniform": (rng.uniform(-3, 3, size=(n, 2)), star),
        "far apart": (rng.uniform(-25, 25, size=(n, 2)), rng.uniform(-25, 25, size=(n, 2))),
        "nearly mu*": (star + 1e-3 * rng.normal(size=(n, 2)), star),
        "nearly swapped": (star[:, ::-1] + 1e-6 * rng.normal(size=(n, 2)), star),
        "one mean shared": (shared, star),
        "one mean 1e-5 off": (tiny_off, star),
        "generator merged": (np.repeat(rng.uniform(-3, 3, size=(n, 1)), 2, axis=1), star),
        "true means equal": (rng.uniform(-3, 3, size=(n, 2)), np.repeat(star[:, :1], 2, axis=1)),
        "ties on a 0.1 grid": (np.round(rng.uniform(-3, 3, size=(n, 2)), 1), np.round(star, 1)),
    }


def test_optimal_discriminator_is_the_set_where_true_density_wins():
    rng = np.random.default_rng(2)
    for name, (mu, mu_star) in _hard_cases(rng, 2000).items():
        ends = optimal_discriminator(mu, mu_star)
        low = np.minimum(mu.min(axis=1), mu_star.min(axis=1))[:, None] - 4
        high = np.maximum(mu.max(axis=1), mu_star.max(axis=1))[:, None] + 4
        x = low + (high - low) * rng.random((mu.shape[0], 50))
        inside = ((x >= ends[:, 0:1]) & (x <= ends[:, 1:2])) | ((x >= ends[:, 2:3]) & (x <= ends[:, 3:4]))
        # The sign of log p* - log p_mu, computed independently (and safe from underflow).
        log_ratio = (np.logaddexp(-0.5 * (x - mu_star[:, :1]) ** 2, -0.5 * (x - mu_star[:, 1:]) ** 2)
                     - np.logaddexp(-0.5 * (x - mu[:, :1]) ** 2, -0.5 * (x - mu[:, 1:]) ** 2))
        undecided = np.abs(log_ratio) < 1e-12
        near_end = np.min(np.abs(x[:, :, None] - ends[:, None, :]), axis=2) < 1e-6
        assert np.all((inside == (log_ratio > 0)) | near_end | undecided), name
        assert np.mean(undecided) < 0.1, name  # the comparison is not vacuous
    # And its L is never beaten by a random two-interval discriminator.
    mu, _, mu_star = _random_states(rng, 4000)
    ends = optimal_discriminator(mu, mu_star)
    random_ends = np.sort(rng.uniform(-6, 6, size=(4000, 4)), axis=1)
    assert np.all(loss(mu, ends, mu_star) >= loss(mu, random_ends, mu_star) - 1e-12)


def test_optimal_discriminator_at_the_optimum_is_empty():
    ends = optimal_discriminator(np.array([[0.5, -0.5], [-0.5, 0.5]]), np.array([-0.5, 0.5]))
    assert np.all(ends == np.inf)
    assert np.all(generator_gradient(np.array([[0.5, -0.5], [-0.5, 0.5]]), ends) == 0)


def test_project_ends_is_the_isotonic_projection():
    rng = np.random.default_rng(3)
    ends = rng.normal(size=(500, 4)) * 2
    projected = project_ends(ends)
    assert np.all(np.diff(projected, axis=1) >= -1e-15)
    np.testing.assert_array_equal(project_ends(projected), projected)
    # Euclidean projection onto a convex cone: the residual is orthogonal to the projection
    # and no sorted point of a random sample is closer.
    residual = ends - projected
    np.testing.assert_allclose(np.sum(residual * projected, axis=1), 0, atol=1e-12)
    candidates = np.sort(rng.normal(size=(500, 200, 4)) * 2, axis=2)
    assert np.all(np.sum(residual**2, axis=1) <= np.min(np.sum((ends[:, None] - candidates) ** 2, axis=2), axis=1))
    # A reversed interval collapses to its midpoint.
    np.testing.assert_allclose(project_ends(np.array([[-1.0, 1.0, 3.0, 2.0]])), [[-1.0, 1.0, 2.5, 2.5]])


def test_classify_hand_made_final_states():
    mu_star = np.array([-2.0, 2.0])
    far = np.array([5.0, 6.0, 7.0, 8.0])
    mu = np.array([
        [2.05, -1.96],   # converged, components swapped
        [0.01, 0.03],    # merged between the true modes
        [2.2, 2.25],     # merged next to one true mode, the other missed
        [-2.43, -0.90],  # both intervals shrunk to points (Figure 2's end state)
        [-0.4, 0.4],     # discriminator far away: no gradient
        [-1.0, 1.5],     # still on its way
    ])
    ends = np.array([far, far, far, [-2.41, -2.41, 0.3, 0.3], far, [-1.9, -0.2, 0.4, 1.8]])
    grad_norm = np.hypot(*generator_gradient(mu, ends).T)
    labels = [OUTCOMES[k] for k in classify(mu, mu_star, grad_norm, ends)]
    assert labels == ["converged", "mode_collapse", "mode_collapse", "discriminator_collapse",
                      "vanishing_gradient", "other"]
    # Without interval ends (optimal dynamics) there is no discriminator collapse.
    assert OUTCOMES[classify(mu[3:4], mu_star, np.array([0.2]))[0]] == "other"
    # Tolerances are keyword arguments.
    assert OUTCOMES[classify(mu[:1], mu_star, grad_norm[:1], ends[:1], conv_tol=0.01)[0]] != "converged"


def test_paper_figures_show_the_paper_outcomes():
    for spec, first_order in ((FIGURE_1, "mode_collapse"), (FIGURE_2, "discriminator_collapse")):
        runs = run_figure(spec)
        optimal = runs["optimal"]
        assert OUTCOMES[classify(optimal.mu, spec.mu_star, optimal.grad_norm)[0]] == "converged"
        run = runs["first_order"]
        assert OUTCOMES[classify(run.mu, spec.mu_star, run.grad_norm, run.ends)[0]] == first_order
        assert run.mu_path.shape == (spec.steps + 1, 1, 2) and run.ends_path.shape == (spec.steps + 1, 1, 4)
    np.testing.assert_allclose(runs["first_order"].mu[0], [-2.434, -0.902], atol=1e-3)


def test_wilson_interval():
    low, high = wilson_interval(np.array([0, 5, 100]), 100)
    np.testing.assert_allclose(low, [0.0, 0.02154, 0.96301], atol=1e-5)
    np.testing.assert_allclose(high, [0.03699, 0.11175, 1.0], atol=1e-5)


def test_small_sweep_reproduces_the_paper_dichotomy():
    # eta_g = 0.3 lets the optimal dynamics finish within 300 steps; initial states are the
    # stage's defaults (mu ~ U[-3, 3]^2, interval ends ~ U[-6, 6]) where the paper reports
    # first-order failures: intervals starting in the tails give vanishing gradients.
    table = sweep((-2.0, 2.0), eta_g=[0.3], eta_d=[0.1, 0.3], runs=500, steps=300, seed=0)
    assert list(table["dynamics"]) == ["optimal", "first_order", "first_order"]
    optimal = table.iloc[0]
    first = table[table["dynamics"] == "first_order"]
    assert optimal["converged"] >= 0.99
    assert (first["converged"] < 0.5).all()
    assert first["mode_collapse_count"].sum() > 0
    assert first["vanishing_gradient_count"].sum() > 0
    assert first["discriminator_collapse_count"].sum() > 0
    fractions = table[list(OUTCOMES)].to_numpy()
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0)
    for outcome in OUTCOMES:
        assert (table[f"{outcome}_ci_low"] <= table[outcome]).all()
        assert (table[outcome] <= table[f"{outcome}_ci_high"]).all()


def test_runs_do_not_depend_on_their_batch():
    # Chunking and threads must not change a single bit of any run.
    mu0, ends0 = sample_initial(5, 300, 3.0, 6.0)
    mu_star = np.array([-2.0, 2.0])
    whole = optimal_dynamics(mu0, mu_star, 0.3, 60)
    parts = [optimal_dynamics(mu0[rows], mu_star, 0.3, 60) for rows in (slice(0, 7), slice(7, 300))]
    np.testing.assert_array_equal(whole.mu, np.concatenate([p.mu for p in parts]))
    np.testing.assert_array_equal(whole.ends, np.concatenate([p.ends for p in parts]))
    whole = first_order_dynamics(mu0, ends0, mu_star, 0.3, 0.1, 60)
    parts = [first_order_dynamics(mu0[rows], ends0[rows], mu_star, 0.3, 0.1, 60)
             for rows in (slice(0, 7), slice(7, 300))]
    np.testing.assert_array_equal(whole.mu, np.concatenate([p.mu for p in parts]))
    np.testing.assert_array_equal(whole.ends, np.concatenate([p.ends for p in parts]))


def test_sweep_is_deterministic_and_independent_of_chunks_and_threads(monkeypatch):
    args = ((-2.0, 2.0), [0.1, 0.3], [0.3])
    one = sweep(*args, runs=60, steps=80, seed=7, threads=1)
    monkeypatch.setattr(simulate, "CHUNK_RUNS", 13)
    two = sweep(*args, runs=60, steps=80, seed=7, threads=2)
    other_seed = sweep(*args, runs=60, steps=80, seed=8, threads=1)
    assert one.equals(two)
    assert not one.equals(other_seed)


#: the stage's outputs: flag -> file name (as rules/dynamics.smk names them)
OUTPUTS = {"--figure1": "figure1.png", "--figure2": "figure2.png", "--sweep": "sweep.csv",
           "--heatmap": "sweep_heatmap.png", "--summary": "summary.json"}


def stage_args(out_dir, runs: int = 40, steps: int = 60, seed: int = 0) -> list[str]:
    """A valid command line of the gan_dynamics stage writing into ``out_dir`` (later flags override)."""
    args = ["--seed", str(seed), "--runs", str(runs), "--steps", str(steps), "--eta-g", "0.3", "--eta-d", "0.3",
            "--true-means", "-2", "2", "--gen-range", "3", "--disc-range", "6", "--threads", "1"]
    for flag, name in OUTPUTS.items():
        args += [flag, str(out_dir / name)]
    return args


@pytest.mark.parametrize("flags, named", [
    (["--runs", "-5"], "--runs"),
    (["--steps", "0"], "--steps"),
    (["--eta-g", "0.1", "0"], "--eta-g"),
    (["--eta-d", "nan"], "--eta-d"),
    (["--threads", "0"], "--threads"),
    (["--true-means", "1", "1"], "--true-means"),
])
def test_cli_rejects_bad_arguments(tmp_path, flags, named):
    from audit.gan_dynamics import main

    with pytest.raises(AuditInputError, match=named):
        main(stage_args(tmp_path) + flags)
    assert not any(tmp_path.iterdir())


def test_cli_writes_identical_outputs_for_the_same_seed(tmp_path):
    import json

    from audit.gan_dynamics import main

    args = ["--eta-g", "0.3", "--eta-d", "0.3", "1.0"]
    main(stage_args(tmp_path / "a", seed=3) + args)
    main(stage_args(tmp_path / "b", seed=3) + args)
    names = list(OUTPUTS.values())
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(names)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["figures"]["figure1"]["outcome"] == {"optimal": "converged", "first_order": "mode_collapse"}
    assert set(summary["sweep"]) == {"optimal", "first_order"}
    assert summary["sweep"]["optimal"]["converged_min_cell"] == pytest.approx(
        summary["sweep"]["optimal"]["converged"])
