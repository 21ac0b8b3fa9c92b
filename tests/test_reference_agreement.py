"""ganaudit's FD, KID, inception-style score and PRDC agree with the reference implementations
(torchmetrics 1.9, clean-fid 0.1.35, prdc 0.2; pinned in requirements-test.txt) fed the same
seeded feature arrays. Nothing is downloaded: torchmetrics gets an identity feature module
(precomputed features), clean-fid only its array functions.

The tolerances are stated by the issue before any run: FD to 1e-6 relative, KID to 1e-9
relative on the same subsets (both sides compute in float64), PRDC exactly on data without
ties, IS to 1e-10 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

# the reference packages are pinned test dependencies (requirements-test.txt): a missing one is
# an error, not a skip
import cleanfid.fid as cleanfid
import prdc as reference_prdc
import torchmetrics.image.fid as torchmetrics_fid
import torchmetrics.image.inception as torchmetrics_is
import torchmetrics.image.kid as torchmetrics_kid
from audit.metrics import frechet, inception_score as score, kid, prdc

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


class Identity(torch.nn.Module):
    """Precomputed features as torchmetrics' 'feature extractor' (no Inception weights)."""

    def __init__(self, d: int):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


def correlated_features(seed: int, n: int, m: int, d: int = 64):
    """Two float32 feature sets with different means and non-commuting covariances, L2-normalised
    like the annotator's."""
    rng = np.random.default_rng(seed)
    mix_x, mix_y = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    x = rng.normal(size=(n, d)) @ mix_x
    y = rng.normal(size=(m, d)) @ (mix_x + 0.3 * mix_y) + 0.2
    return [(a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32) for a in (x, y)]


@pytest.fixture(scope="module")
def features():
    return correlated_features(0, 1500, 1200)


def test_fd_agrees_with_torchmetrics_and_clean_fid(features):
    x, y = features
    metric = torchmetrics_fid.FrechetInceptionDistance(feature=Identity(x.shape[1]))
    metric.set_dtype(torch.float64)
    metric.update(torch.from_numpy(x).double(), real=True)
    metric.update(torch.from_numpy(y).double(), real=False)
    theirs = float(metric.compute())
    clean = cleanfid.fid_from_feats(x.astype(np.float64), y.astype(np.float64))
    ours = frechet.frechet_distance(x, y)
    assert ours == pytest.approx(0.0573333353, rel=1e-6)  # the pinned figure of these seeded features
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert ours == pytest.approx(clean, rel=1e-6)


def test_kid_agrees_with_torchmetrics_on_the_same_subsets(features):
    x, y = features
    subsets, size = 20, 400
    metric = torchmetrics_kid.KernelInceptionDistance(feature=Identity(x.shape[1]), subsets=subsets, subset_size=size)
    xd, yd = x.astype(np.float64), y.astype(np.float64)
    metric.update(torch.from_numpy(xd), real=True)
    metric.update(torch.from_numpy(yd), real=False)
    torch.manual_seed(123)
    mean, std = metric.compute()
    # the same subsets: torchmetrics draws randperm(real), then randperm(fake), per subset
    torch.manual_seed(123)
    pairs = [(torch.randperm(x.shape[0])[:size].numpy(), torch.randperm(y.shape[0])[:size].numpy())
             for _ in range(subsets)]
    values = kid.kernel_distance_on_subsets(xd, yd, pairs)
    assert values.mean() == pytest.approx(float(mean), rel=1e-9)
    assert values.std() == pytest.approx(float(std), rel=1e-9)
    assert values.mean() == pytest.approx(8.9529533e-06, rel=1e-6)  # the pinned figure


def test_kid_agrees_with_clean_fid_formula(features):
    """clean-fid's kernel_distance draws its subsets from numpy's global RNG (fake first, then
    real): seeding it and replaying the draws gives the same subsets."""
    x, y = (a.astype(np.float64) for a in features)
    np.random.seed(5)
    theirs = cleanfid.kernel_distance(x, y, num_subsets=10, max_subset_size=300)
    np.random.seed(5)
    pairs = []
    for _ in range(10):
        fake = np.random.choice(y.shape[0], 300, replace=False)
        real = np.random.choice(x.shape[0], 300, replace=False)
        pairs.append((real, fake))
    assert kid.kernel_distance_on_subsets(x, y, pairs).mean() == pytest.approx(theirs, rel=1e-9)


def test_prdc_equals_prdc_without_ties():
    x, y = correlated_features(1, 900, 700, d=32)
    # float64 inputs: prdc's distances are then float64 too (as float32 they are rounded to
    # float32 and tie where the exact ones do not)
    x, y = x.astype(np.float64), y.astype(np.float64)
    ours = prdc.prdc(x, y, 5)
    theirs = {k: float(v) for k, v in reference_prdc.compute_prdc(x, y, 5).items()}
    assert ours == pytest.approx(theirs, rel=1e-12)
    # the pinned figures: counts out of 700 fake and 900 real points
    assert ours == pytest.approx({"precision": 669 / 700, "recall": 855 / 900, "density": 2860 / 3500,
                                  "coverage": 793 / 900}, rel=1e-12)


def test_prdc_readme_figure():
    """prdc's README: 10k vs 10k samples of N(0, I) in 1000-D, k = 5 gives P 0.477, R 0.471,
    D 1.056, C 0.974; here at 2,000 vs 2,000 (CI budget) the same run of both must agree
    exactly, and with the README's magnitudes within 0.1 (precision and recall fall with N)."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(2000, 1000)), rng.normal(size=(2000, 1000))
    ours = prdc.prdc(x, y, 5)
    theirs = {k: float(v) for k, v in reference_prdc.compute_prdc(x, y, 5).items()}
    assert ours == pytest.approx(theirs, rel=1e-12)
    assert ours["density"] == pytest.approx(1.056, abs=0.1) and ours["coverage"] == pytest.approx(0.974, abs=0.1)


def test_inception_score_agrees_with_torchmetrics_and_a_direct_computation():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(10, 0.3), 2000)
    direct = np.exp(np.mean(np.sum(p * (np.log(p) - np.log(p.mean(axis=0))), axis=1)))
    assert score.inception_score(p)[0] == pytest.approx(direct, rel=1e-12)
    metric = torchmetrics_is.InceptionScore(feature=Identity(10), splits=10)
    metric.update(torch.from_numpy(np.log(p)))  # softmax(log p) = p
    torch.manual_seed(4)
    mean, std = metric.compute()
    torch.manual_seed(4)
    order = torch.randperm(p.shape[0]).numpy()
    ours = score.inception_score(p[order], splits=10, ddof=1)  # torchmetrics: unbiased std
    assert ours[0] == pytest.approx(float(mean), rel=1e-10) and ours[1] == pytest.approx(float(std), rel=1e-8)
