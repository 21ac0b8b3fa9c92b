"""End to end: the whole DAG on a reduced digits config recovers the planted class skew."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from audit.data.store import largest_remainder
from tests.conftest import REPO, run_snakemake

# the session run saves an external TorchScript generator (tests/conftest.py digits_ci_run)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:FutureWarning")


@pytest.fixture(scope="module")
def finished_run(digits_ci_run):
    return digits_ci_run


def skew(workdir, gan):
    return json.loads((workdir / "results" / "digits" / "skew" / f"{gan}.json").read_text())


def test_annotator_accuracy(finished_run):
    workdir, _ = finished_run
    metrics = json.loads((workdir / "results/digits/annotator/metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["ece_after_calibration"] <= metrics["ece_before_calibration"] + 0.01


def test_planted_skew_is_recovered(finished_run):
    """What one run can show about a large skew (class 0 at 0.3, TV 0.2 from the real mix); how
    often the verdicts and intervals are right is measured in tests/test_calibration_skew.py."""
    workdir, config = finished_run
    result = skew(workdir, "skewed")
    planted = np.asarray(result["planted_distribution"])
    assert planted[0] == pytest.approx(0.3)
    verdicts = {v["test"]: v for v in result["verdicts"]}
    smallest_p = 1 / (1 + config["skew"]["null_draws"])
    for name in ("argmax", "confident", "corrected"):
        entry, verdict = result["estimates"][name], verdicts[f"skew.{name}"]
        # TV 0.2 against perfect generators' ~0.02: no null draw reaches it, p is at its floor
        assert verdict["p_value"] == pytest.approx(smallest_p) and verdict["state"] == "flagged", name
        assert verdict["text"].startswith("skewed: class 0 at "), verdict["text"]
        assert entry["consistent_with_real"] is False and entry["tv_ci"]["low"] > 0
        # the estimate is as close to the planted mix as a perfect generator's to the real one:
        # within 3x the null's mean TV (the null's 99.9th percentile is below 2x its mean)
        assert entry["tv_to_planted"] <= 3 * entry["null_tv_mean"], (name, entry["tv_to_planted"])
    assert verdicts["skew.chi2_argmax"]["state"] == "flagged"
    # the smallest of 9 shares 0.7/9 drawn from 6,000 samples sits ~1.5 sd (0.0035) low: ratio +7%
    assert result["estimates"]["corrected"]["max_min_ratio"] == pytest.approx(0.3 / (0.7 / 9), rel=0.2)


def test_uniform_control_is_a_multinomial_perfect_generator(finished_run):
    """The uniform control draws each class at random (draw: multinomial), so its verdicts are
    real tests; whether they hold their error rate is a statistical claim one run cannot show
    (tests/test_calibration_skew.py measures it). One run shows the control is not exact quotas,
    every test ran, and each verdict agrees with its p-value and its interval."""
    workdir, config = finished_run
    result = skew(workdir, "uniform")
    truth = json.loads((workdir / "results/digits/samples/uniform/truth.json").read_text())
    assert truth["draw"] == "multinomial"
    labels = np.load(workdir / "results/digits/samples/uniform/planted_labels.npy")
    quota = largest_remainder(np.asarray(result["real_distribution"]), labels.size)
    # multinomial counts equal to the exact quotas in all 10 classes: probability ~1e-9
    assert not np.array_equal(np.bincount(labels, minlength=10), quota)
    alpha = config["skew"]["alpha"]
    for verdict in result["verdicts"]:
        assert verdict["p_value"] is not None and verdict["alpha"] == alpha, verdict
        assert verdict["rejected"] == (verdict["p_value"] < alpha)
    for name, entry in result["estimates"].items():
        assert entry["consistent_with_real"] == (entry["p_value"] >= alpha)
        if entry["consistent_with_real"]:
            assert entry["tv_ci"]["low"] == 0  # test inversion at 0: interval and verdict agree
        assert entry["tv_to_planted"] <= 3 * entry["null_tv_mean"], (name, entry["tv_to_planted"])


def test_memoriser_is_worth_few_real_images(finished_run):
    from audit.metrics.diversity import states_at_most

    workdir, _ = finished_run
    result = json.loads((workdir / "results/digits/diversity/memoriser.json").read_text())
    n_equiv = result["scores"]["deep"]["n_equiv"]
    # k = 50 memorised images: a value or a censored bound, but never stating more than 2k
    assert states_at_most(n_equiv, 100), n_equiv
    # and the low-diversity verdict (H0: worth at least the 809 train images) rejects, for both kinds
    assert [(v["test"], v["state"]) for v in result["verdicts"]] == [("diversity.linear", "flagged"),
                                                                     ("diversity.deep", "flagged")], result["verdicts"]


def test_summary_and_report(finished_run):
    workdir, config = finished_run
    summary = pd.read_csv(workdir / "results/digits/summary.csv")
    assert list(summary["gan"]) == list(config["gans"])
    html = (workdir / "results/digits/report.html").read_text()
    assert "data:image/png;base64" in html and "skewed" in html
    # the verdict table printed when a run ends: one block per GAN, and every planted control with
    # a large planted effect recovered by the tests that must see it (skewed: class skew; memoriser
    # and one_per_class: support size and diversity; dropmodes: class skew, its missing classes
    # named). uniform's "consistent" is a 5%-level test (Holm over its row): its error rate is
    # measured in tests/test_calibration_skew.py and tests/test_verdict.py, not asserted from one run.
    verdicts = (workdir / "results/digits/verdicts.txt").read_text()
    blocks = {block.split(" ")[0]: block for block in verdicts.split("\n") if block and not block.startswith(" ")}
    assert list(blocks) == list(config["gans"]), verdicts
    for gan in ("skewed", "memoriser", "dropmodes", "one_per_class"):
        assert blocks[gan].endswith(": recovered"), verdicts
    assert "classes missing" in verdicts.split("dropmodes (")[1].split("class skew")[1].split("\n")[0], verdicts
    # the table's cells are the row's Holm-adjusted decisions: never below the test's own p-value,
    # and flagged exactly when the adjusted value is below the level
    for gan, row in summary.set_index("gan").iterrows():
        own = {v["test"]: v for v in skew(workdir, gan)["verdicts"]}["skew.corrected"]
        assert own["p_value"] <= row["table_class_skew_p_holm"] <= 1, gan
        flagged = row["table_class_skew_p_holm"] < own["alpha"]
        assert row["table_class_skew"].startswith(own["finding"] if flagged else own["null_finding"]), (gan, row)


def test_rerun_is_a_no_op_and_deletion_reruns_only_downstream(finished_run):
    workdir, _ = finished_run
    assert "Nothing to be done" in run_snakemake(workdir, finished_run[1], "-n").stdout
    samples = workdir / "results/digits/samples/skewed/samples.npy"
    kept = samples.with_name("samples.npy.kept")
    samples.rename(kept)  # the session's run is shared: restored below, bytes and mtime
    try:
        dry = run_snakemake(workdir, finished_run[1], "-n").stdout
    finally:
        kept.rename(samples)
    assert "Nothing to be done" in run_snakemake(workdir, finished_run[1], "-n").stdout
    planned = [line.strip().removeprefix("rule ").removeprefix("localrule ").rstrip(":") for line in dry.splitlines()
               if line.startswith(("rule ", "localrule "))]
    wildcards = {line.split("gan=")[1].strip() for line in dry.splitlines() if "wildcards: gan=" in line}
    # every per-GAN stage of the skewed GAN reruns, once; nothing shared (data, annotator, trained
    # GANs, real curve, real features, the support rule's calibration) and no other GAN does
    assert {"sample", "label", "skew", "spectrum", "diversity", "report", "all"} <= set(planned), dry
    assert len(planned) == len(set(planned)), dry
    assert not set(planned) & {"prepare", "annotator", "train_gan", "real_curve", "features_real",
                               "support_calibration", "gan_dynamics"}, dry
    assert wildcards == {"skewed"}, dry


def find_chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


#: appended to a copy of the report: once every image has loaded, what the page looks like to a
#: reader, written into the DOM that --dump-dom prints
PROBE = """<script>window.addEventListener("load", () => {
  const images = [...document.images];
  const result = {images: images.length,
    undecoded: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    scroll_width: document.documentElement.scrollWidth, client_width: document.documentElement.clientWidth,
    verdict_rows: [...document.querySelectorAll("table.verdicts tbody tr")].map(r => r.cells[0].firstChild.textContent),
    verdict_bottom: document.querySelector("table.verdicts").getBoundingClientRect().bottom,
    text: document.body.innerText};
  const out = document.createElement("pre"); out.id = "probe"; out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});</script>"""


def test_report_in_a_real_browser(finished_run):
    """The report as a reader sees it in headless Chromium at a laptop's 1280 px: every image
    decoded, no sideways scrolling, one verdict row per GAN, no nan/None anywhere."""
    workdir, config = finished_run
    browser = find_chromium()
    if browser is None:
        pytest.skip("no Chromium on PATH: `make test` installs Debian's chromium with apt where it can (root)")
    report = workdir / "results/digits/report.html"
    probe = report.with_name("report_probe.html")
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,900"]
    dom = subprocess.run([*flags, "--virtual-time-budget=20000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=180).stdout
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, f"the probe did not run; chromium printed: {dom[-2000:]}"
    page = json.loads(htmllib.unescape(match.group(1)))
    assert page["images"] >= 3 * len(config["gans"]) and page["undecoded"] == []
    assert page["scroll_width"] <= page["client_width"] == 1280
    assert page["verdict_rows"] == list(config["gans"])
    # Python's and numpy's missing values leaking into the page ("null" is a word of the methods)
    assert not re.search(r"\bnan\b|\bNaN\b|\bNone\b", page["text"]), \
        re.findall(r".{40}(?:\bnan\b|\bNaN\b|\bNone\b).{40}", page["text"])
    # a screenshot of the top of the page (the verdict table) for a human look
    shots = REPO / "results" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    height = int(page["verdict_bottom"]) + 80
    subprocess.run([*flags[:-1], f"--window-size=1280,{height}", f"--screenshot={shots / 'report_digits_ci.png'}",
                    report.as_uri()], capture_output=True, timeout=180, check=True)
    assert (shots / "report_digits_ci.png").stat().st_size > 10_000
