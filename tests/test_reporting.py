"""The verdict table and its planted-truth check (audit.reporting), on hand-made verdicts."""

from __future__ import annotations

import numpy as np

from audit.metrics.verdict import Verdict
from audit.reporting.html import verdict_table
from audit.reporting.verdicts import build_row, columns_of, planted_expectations, text_table

REAL = np.full(4, 0.25)


def verdict(title, p, test="t", headline=False):
    return Verdict(test=test, title=title, hypothesis="H0", p_value=p, alpha=0.05, finding="flagged words",
                   null_finding="consistent", key_number="k", extra={"headline": headline}).to_json()


def test_planted_expectations_follow_the_truth():
    assert planted_expectations({"type": "resample", "class_distribution": [0.25] * 4}, REAL)[1] == {"class skew": False}
    assert planted_expectations({"type": "resample", "class_distribution": [0.4, 0.2, 0.2, 0.2]}, REAL)[1] == {
        "class skew": True}
    words, expected = planted_expectations({"type": "dropmodes", "class_distribution": [0.5, 0.5, 0, 0]}, REAL)
    assert "only 2 of 4 classes" in words and expected == {"class skew": True}
    assert planted_expectations({"type": "memoriser", "support_size": 50}, REAL)[1] == {
        "support size": True, "diversity": True}
    assert planted_expectations({"type": "dcgan"}, REAL) == (None, {})


def test_recovered_and_missed():
    skewed = {"type": "resample", "class_distribution": [0.4, 0.2, 0.2, 0.2]}
    caught = build_row("skewed", "resample", [{"verdicts": [verdict("class skew", 0.001)]}], skewed, REAL)
    missed = build_row("skewed", "resample", [{"verdicts": [verdict("class skew", 0.4)]}], skewed, REAL)
    assert caught.recovered is True and missed.recovered is False and missed.missed() == ["class skew"]
    unchecked = build_row("skewed", "resample", [{}], skewed, REAL)
    assert unchecked.recovered is None  # no verdict to check the truth against: never "recovered"


def test_headline_and_column_order():
    results = [{"verdicts": [verdict("spectrum", 0.5)]},
               {"verdicts": [verdict("class skew", 0.5, "a"), verdict("class skew", 0.01, "b", headline=True)]}]
    row = build_row("g", "dcgan", results, {"type": "dcgan"})
    assert row.cells["class skew"]["test"] == "b"
    assert columns_of([row]) == ["class skew", "spectrum"]
    text = text_table([row])
    assert "!! class skew" in text and "ok spectrum" in text


def test_html_table_has_one_row_per_gan_and_no_nan():
    rows = [build_row(g, "dcgan", [{"verdicts": [verdict("class skew", p)]}], {"type": "dcgan"})
            for g, p in (("a", 0.01), ("b", None if False else 0.3))]
    page = verdict_table(rows)
    assert page.count("<tr>") == 3 and "nan" not in page.lower() and "None" not in page


def test_fixed_headline_is_not_whichever_test_rejected():
    # the corrected estimate heads the class-skew column even when another estimate rejects
    results = [{"verdicts": [verdict("class skew (argmax)", 0.001, "skew.argmax"),
                             verdict("class skew (corrected)", 0.4, "skew.corrected"),
                             verdict("label mix vs real", 0.001, "skew.chi2_argmax")]}]
    row = build_row("g", "dcgan", results, {"type": "dcgan"})
    assert list(row.cells) == ["class skew"] and row.cells["class skew"]["test"] == "skew.corrected"
    assert len(row.verdicts) == 3  # the others stay listed in the GAN's section


def test_captions_render_wildcards_params_and_markup(tmp_path):
    from audit.reporting.captions import load_captions, render

    path = tmp_path / "diversity.rst"
    path.write_text("Samples of {{ snakemake.wildcards.gan }}, **bold**, ``code``, {{ snakemake.params.seeds }} seeds "
                    "and {{ snakemake.params.other }} <x>.\n")
    text = render(load_captions([str(path)])["diversity"], "dc<gan>", {"seeds": 5})
    assert text == ("Samples of dc&lt;gan&gt;, <b>bold</b>, <code>code</code>, 5 seeds and configured &lt;x&gt;.")


def test_every_caption_of_the_report_renders_without_template_leftovers():
    from pathlib import Path

    from audit.reporting.captions import load_captions, render

    files = sorted(str(p) for p in (Path(__file__).parents[1] / "report" / "captions").glob("*.rst"))
    for kind, text in load_captions(files).items():
        out = render(text, "g")
        assert "{{" not in out and "**" not in out and "``" not in out, kind
