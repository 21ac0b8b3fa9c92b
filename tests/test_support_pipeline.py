"""End to end at CI size (issue 13): features, the calibrated birthday test, memorisation, and the
human confirmation of pairs.csv as Snakemake sees it (the edit reruns only the estimate); and the
stages' boundaries (the embedding, bad input) on small arrays."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from tests.conftest import assert_cli_error, reduced_config, run_snakemake

N = 3000  # samples per GAN: the verdict and the estimate use the sizes S with 20 S <= N (25, 50, 100)
GANS = ("memoriser", "uniform", "copier")


def targets() -> list[str]:
    """The support estimate of the two planted supports, memorisation of all three GANs."""
    return ([f"results/digits/support/{g}/support.json" for g in ("memoriser", "uniform")]
            + [f"results/digits/memorisation/{g}.json" for g in GANS])


def scheduled(workdir, config, *extra) -> dict[str, int]:
    """rule -> jobs in the 'Job stats' table of a dry run of the targets."""
    out = run_snakemake(workdir, config, "-n", *extra, *targets()).stdout
    if "Nothing to be done" in out:
        return {}
    table = out[out.index("Job stats:"):].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.mark.parametrize("arch, shape, width", [("smallcnn", (8, 8, 1), 128), ("resnet18", (16, 16, 3), 512)])
def test_the_embedding_is_what_the_final_linear_layer_reads(arch, shape, width):
    import torch

    from audit.models.classifier import build_classifier, to_tensor
    from audit.models.embedding import embed

    torch.manual_seed(0)
    model = build_classifier(arch, shape, 4).eval()
    images = np.random.default_rng(0).integers(0, 256, (5, *shape), dtype=np.uint8)
    features = embed(model, images, batch_size=2)
    with torch.no_grad():
        if arch == "smallcnn":  # the Sequential up to Dropout and Linear
            expected = model[:-2](to_tensor(images))
        else:  # what fc receives: model without its fc
            model.fc, head = torch.nn.Identity(), model.fc
            expected = model(to_tensor(images))
            model.fc = head
    expected = expected / expected.norm(dim=1, keepdim=True)
    assert features.dtype == np.float32 and features.shape == (5, width)
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, rtol=1e-6)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    from audit import features, support, support_pairs

    np.save(tmp_path / "wrong.npy", np.zeros((4, 3), dtype=np.int32))
    assert_cli_error(support_pairs.main, ["--calibration", str(tmp_path / "none.json"), "--vectors", "x", "--samples", "y",
                                          "--repeats", "20", "--pairs-per-draw", "20", "--seed", "0", "--threads", "1",
                                          "--device", "cpu", "--search", "s.json", "--pairs", "p.csv"],
                     capsys, "none.json", "file not found")
    with pytest.raises(Exception, match="wrong.npy: expected float"):
        features.load_vectors(str(tmp_path / "wrong.npy"))
    search = {"sizes": [25], "repeats": 20, "n_samples": 100}
    (tmp_path / "pairs.csv").write_text("size,repeat,sample_i,sample_j,distance,rule_duplicate,confirmed\n"
                                        "25,0,1,2,0.0,yes,yes\n25,1,3,4,0.1,no,maybe\n")
    with pytest.raises(Exception, match=r"pairs.csv: line 3: confirmed must be yes, no or empty, got 'maybe'"):
        support.read_pairs(str(tmp_path / "pairs.csv"), search)
    (tmp_path / "pairs.csv").write_text("size,repeat,sample_i,sample_j,distance,rule_duplicate,confirmed\n"
                                        "50,0,1,2,0.0,yes,\n")
    with pytest.raises(Exception, match=r"line 2: size 50, repeat 0 is not a draw of the search"):
        support.read_pairs(str(tmp_path / "pairs.csv"), search)


def test_fewer_samples_than_every_draw_size_gives_an_undefined_verdict(tmp_path, digits_prepared):
    """samples.n = 2 (the schema's minimum) below every grid S: the search lists no pair, and the
    support stage writes an 'undefined' verdict with its reason, a header-only pairs.csv and its
    figures, instead of crashing (tests/test_reliability.py runs the whole DAG at n = 2)."""
    from audit import support, support_calibration, support_pairs

    def vectors(images):
        return (np.asarray(images, np.float32).reshape(len(images), -1) / 255).astype(np.float32)

    data = digits_prepared
    samples = data.images[data.rows("pool")][:2]
    np.save(tmp_path / "real.npy", vectors(data.images[data.rows("test")]))
    np.save(tmp_path / "samples.npy", samples)
    np.save(tmp_path / "gan.npy", vectors(samples))
    pd.DataFrame({"sample": [0, 1], "train_row_features": [0, 1], "distance_features": [0.1, 0.2]}).to_csv(
        tmp_path / "nearest.csv", index=False)
    f = {name: str(tmp_path / name) for name in ("real.npy", "samples.npy", "gan.npy", "nearest.csv", "cal.json",
                                                 "search.json", "pairs.csv", "support.json", "support.csv",
                                                 "curve.png", "sheet.png")}
    common = ["--seed", "0", "--threads", "1", "--device", "cpu"]
    support_calibration.main(["--real", f["real.npy"], "--grid", "25", "50", "--quantile", "0.01", "--halvings", "1",
                              "--draws", "2", *common, "--out", f["cal.json"]])
    support_pairs.main(["--calibration", f["cal.json"], "--vectors", f["gan.npy"], "--samples", f["samples.npy"],
                        "--repeats", "20", "--pairs-per-draw", "20", *common, "--search", f["search.json"],
                        "--pairs", f["pairs.csv"]])
    assert pd.read_csv(f["pairs.csv"]).empty
    support.main(["--search", f["search.json"], "--pairs", f["pairs.csv"], "--calibration", f["cal.json"],
                  "--samples", f["samples.npy"], "--data", str(data.path), "--nearest", f["nearest.csv"],
                  "--space", "features", "--alpha", "0.05", "--bootstrap", "20", "--seed", "0",
                  "--out-json", f["support.json"], "--table", f["support.csv"], "--curve", f["curve.png"],
                  "--sheet", f["sheet.png"]])
    result = json.loads((tmp_path / "support.json").read_text())
    verdict = result["verdicts"][0]
    assert verdict["p_value"] is None and verdict["state"] == "undefined"
    assert verdict["reason"] == "every draw size S of the grid exceeds the 2 samples"
    assert result["support"]["kind"] == "undetermined" and result["sizes_skipped"] == [25, 50]
    assert all((tmp_path / name).stat().st_size > 1000 for name in ("curve.png", "sheet.png"))


def test_disc_width_and_the_support_vs_discriminator_stage(tmp_path, digits_prepared):
    """Arora & Zhang's discriminator-size experiment varies the discriminator alone; its summary
    stage reads each variant's parameter count from its generator file and gives the rule's
    estimate or bound from its draws."""
    import torch

    from audit.models.gan import train_gan

    images = digits_prepared.images[digits_prepared.rows("train")][:64]
    train_gan(images, tmp_path / "a.pt", steps=2, batch_size=16, width=8, disc_width=24, checkpoint_every=2,
              progress=False)
    train_gan(images, tmp_path / "b.pt", steps=2, batch_size=16, width=8, checkpoint_every=2, progress=False)
    a, b = (torch.load(tmp_path / f, weights_only=False) for f in ("a.pt", "b.pt"))
    assert a["discriminator"]["body.0.weight"].shape[0] == 24 and b["discriminator"]["body.0.weight"].shape[0] == 8
    assert a["config"]["disc_width"] == 24 and b["config"]["disc_width"] == 8 == b["config"]["width"]
    assert {k: v.shape for k, v in a["generator"].items()} == {k: v.shape for k, v in b["generator"].items()}

    # the support_vs_discriminator stage: parameter counts from the files, the estimate or bound per variant
    from audit import support_vs_discriminator
    from audit.models.gan import Discriminator, save_generator

    for name in ("a", "b"):
        save_generator(tmp_path / f"{name}.pt", tmp_path / f"{name}_generator.pt")
    n = 2000  # every S with R S <= n: a holds no duplicate (a bound), b a duplicate in 30 of 40 draws (an estimate)
    (tmp_path / "a.json").write_text(json.dumps({"counts": {"25": [0] * 20, "50": [0] * 20}, "quantile": 0.01,
                                                 "n_samples": n}))
    (tmp_path / "b.json").write_text(json.dumps({"counts": {"25": [1, 0] * 10, "50": [2] * 20}, "quantile": 0.01,
                                                 "n_samples": n}))
    out = tmp_path / "sweep.csv"
    support_vs_discriminator.main(["--names", "x3", "x1", "--searches", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                                   "--generators", str(tmp_path / "a_generator.pt"), str(tmp_path / "b_generator.pt"),
                                   "--alpha", "0.05", "--bootstrap", "50", "--seed", "0", "--out-csv", str(out),
                                   "--out-png", str(tmp_path / "sweep.png")])
    table = pd.read_csv(out).set_index("variant")
    counted = {w: sum(p.numel() for p in Discriminator(images.shape[1:], w, batch_norm=True).parameters()) for w in (24, 8)}
    assert table.loc["x3", "disc_parameters"] == counted[24] and table.loc["x1", "disc_parameters"] == counted[8]
    assert table.loc["x3", "kind"] == "lower_bound" and table.loc["x3", "value"] == pytest.approx(50 * 49 / (2 * np.log(2)))
    # b: 10 + 40 duplicate pairs over 20 C(25, 2) + 20 C(50, 2) pairs
    assert table.loc["x1", "kind"] == "estimate"
    assert table.loc["x1", "value"] == pytest.approx((20 * 300 + 20 * 1225) / 50)
    assert (tmp_path / "sweep.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def finished(tmp_path_factory, digits_prepared):
    workdir = tmp_path_factory.mktemp("support")
    config = reduced_config()
    # a GAN that memorises training images: the planted memoriser of 50 train images (+ N(0, 2) noise)
    config["gans"] = {"memoriser": config["gans"]["memoriser"], "uniform": config["gans"]["uniform"],
                      "copier": {**config["gans"]["memoriser"], "source_split": "train"}}
    config["samples"]["n"] = N
    # CI size: the sizes the estimate and the verdict use (20 S <= N) and two above; fewer replicates
    config["support"].update(grid=[25, 50, 100, 200, 400], bootstrap=200, validation_halvings=10)
    run_snakemake(workdir, config, "--cores", "2", *targets())
    return workdir, config


def load(workdir, path):
    return json.loads((workdir / "results/digits" / path).read_text())


@pytest.mark.slow
def test_rule_rate_and_planted_supports_in_feature_space(finished):
    workdir, config = finished
    q = config["support"]["quantile"]
    calibration = load(workdir, "support/real_calibration.json")
    rates = pd.DataFrame(calibration["false_rates"])
    # measured on the half of the test split the rule never saw, at every S that half holds
    assert rates["size"].max() == calibration["n_measurement"]
    assert (rates["rate"] <= q + 0.01).all(), rates
    pool = sum(1 for _ in open(workdir / "results/digits/data/index.csv") if _.rstrip().endswith(",pool"))
    for gan, planted in (("memoriser", 50), ("uniform", pool)):
        result = load(workdir, f"support/{gan}/support.json")
        verdict = result["verdicts"][0]
        assert verdict["state"] == "flagged" and result["support"]["kind"] == "estimate", result["support"]
        assert planted / 2 <= result["support"]["estimate"] <= 2 * planted, (gan, result["support"])
        assert verdict["key_number"].startswith("support ~")
        for figure in ("curve.png", "sheet.png"):
            assert (workdir / f"results/digits/support/{gan}/{figure}").stat().st_size > 1000


@pytest.mark.slow
def test_memorisation_in_both_spaces(finished):
    workdir, _ = finished
    copier = load(workdir, "memorisation/copier.json")
    assert copier["verdicts"][0]["state"] == "flagged"
    assert all(copier["spaces"][s]["copy_fraction"] > 0.9 for s in ("features", "pixels")), copier["spaces"]
    uniform = load(workdir, "memorisation/uniform.json")
    # 'near the real fraction', fixed before running: within 0.02, and the test does not reject
    assert uniform["verdicts"][0]["state"] == "not flagged"
    for space, r in uniform["spaces"].items():
        assert abs(r["copy_fraction"] - r["real_copy_fraction"]) <= 0.02, (space, r)
    nearest = pd.read_csv(workdir / "results/digits/memorisation/uniform_nearest.csv")
    assert len(nearest) == N and {"train_row_features", "distance_pixels"} <= set(nearest.columns)


@pytest.mark.slow
def test_confirming_pairs_by_hand_reruns_only_the_estimate(finished):
    workdir, config = finished
    pairs_path = workdir / "results/digits/support/memoriser/pairs.csv"
    pairs = pd.read_csv(pairs_path, dtype=str, keep_default_na=False)  # as a spreadsheet would, text
    assert (pairs["confirmed"] == "").all()
    # a reviewer rejects every pair the rule flagged in the draws of S = 25
    reviewed = (pairs["size"] == "25") & (pairs["rule_duplicate"] == "yes")
    assert reviewed.any()
    pairs.loc[reviewed, "confirmed"] = "no"
    pairs.to_csv(pairs_path, index=False)
    edited = pairs_path.read_bytes()

    assert scheduled(workdir, config) == {"support": 1}  # not the search, not the other GANs
    run_snakemake(workdir, config, "--cores", "2", *targets())
    assert pairs_path.read_bytes() == edited  # the edit is never overwritten
    result = load(workdir, "support/memoriser/support.json")
    assert result["source"].startswith("confirmed by hand") and result["confirmation"]["sizes_used"] == [25]
    # no confirmed duplicate among the reviewed draws: a bound, no number
    assert result["support"]["kind"] == "lower_bound" and result["support"]["text"].startswith("support > ")
    assert result["rule_support"]["kind"] == "estimate"  # the rule's own estimate is kept beside it
    assert scheduled(workdir, config) == {}

    # the search reruns (forced, same draws): the confirmations are carried over, not lost
    search = "results/digits/support/memoriser/search.json"
    run_snakemake(workdir, config, "--cores", "2", *targets(), "--forcerun", search)
    again = pd.read_csv(pairs_path, dtype=str, keep_default_na=False)
    assert (again["confirmed"] == pairs["confirmed"]).all()
    assert load(workdir, "support/memoriser/support.json")["support"]["kind"] == "lower_bound"
