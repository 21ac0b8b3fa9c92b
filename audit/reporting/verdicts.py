"""The verdict table: one row per GAN, one column per test, each cell one :class:`Verdict`.

Every stage that decides something writes its verdicts (``audit.metrics.verdict.Verdict``
dicts) under ``"verdicts"`` in its JSON. A column gathers the verdicts of one stage (the part
of ``test`` before the dot); its cell shows the *headline* verdict, fixed in advance per column
(:data:`HEADLINE_TESTS`; else the one marked ``extra["headline"]``, else the first) so that
the table never picks whichever of several tests happened to reject, and the others are
listed beside it in the per-GAN section. A row's cells are decided together: Holm's
adjustment over its headline tests (:func:`audit.metrics.verdict.adjust_family`), so that a
GAN that learned the distribution gets a flagged cell with probability at most alpha, not
up to the sum of every column's level (README "Reading the report"). Planted controls are compared with
what they planted: each planted type states which columns must flag it and which must not
(:func:`planted_expectations`), so the table says "recovered" or "not recovered" in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audit.metrics.verdict import adjust_family

#: the column of each stage's verdicts, in table order (other stages follow, in order of appearance)
COLUMN_OF_STAGE = {"skew": "class skew", "modes": "modes", "diversity": "diversity", "support": "support size",
                   "memorisation": "memorisation", "spectrum": "spectrum",
                   "feature_metrics": "FD (annotator features)", "discriminators": "finite discriminators"}
COLUMNS = tuple(COLUMN_OF_STAGE.values())
#: the headline test of a column with several: the corrected class mix (the estimate whose
#: error rate holds whatever the annotator's errors, audit/metrics/SKEW.md) and the deep
#: classifier (the paper's own setting; the linear one is listed in the GAN's section)
HEADLINE_TESTS = {"class skew": "skew.corrected", "diversity": "diversity.deep"}

#: below this total variation a planted class mix counts as the real one: the planted
#: resamplers realise their mix to within rounding of n samples (1 / n per class at most)
PLANTED_MIX_TOLERANCE = 1e-3


@dataclass
class Row:
    """One GAN: its cells (title -> headline verdict dict), every verdict, and what was planted."""

    gan: str
    kind: str
    cells: dict[str, dict] = field(default_factory=dict)
    verdicts: list[dict] = field(default_factory=list)
    planted: str | None = None
    expected: dict[str, bool] = field(default_factory=dict)

    @property
    def recovered(self) -> bool | None:
        """Every expectation met (None: not a planted control, or no expectation could be checked)."""
        checks = [self.cells[t]["rejected"] == want for t, want in self.expected.items()
                  if t in self.cells and self.cells[t]["rejected"] is not None]
        return None if not checks else all(checks)

    def missed(self) -> list[str]:
        """The columns whose verdict differs from the planted truth."""
        return [t for t, want in self.expected.items()
                if t in self.cells and self.cells[t]["rejected"] is not None and self.cells[t]["rejected"] != want]


def verdict_of(result: dict, test: str) -> dict:
    """The verdict of test ``test`` (e.g. ``"skew.corrected"``) in a stage's JSON ``result``."""
    return next(v for v in result["verdicts"] if v["test"] == test)


def column_of(verdict: dict) -> str:
    """The verdict table's column of ``verdict``: its stage's (the part of ``test`` before the dot)."""
    stage = verdict["test"].split(".")[0]
    return COLUMN_OF_STAGE.get(stage, verdict["title"])


def headline(verdicts: list[dict]) -> dict:
    """The verdict a column shows: its :data:`HEADLINE_TESTS` test, else the one marked
    ``extra["headline"]``, else the first."""
    fixed = [v for v in verdicts if v["test"] == HEADLINE_TESTS.get(column_of(v))]
    marked = [v for v in verdicts if (v.get("extra") or {}).get("headline")]
    return (fixed or marked or verdicts)[0]


def columns_of(rows: list[Row]) -> list[str]:
    """The titles present in ``rows``, in :data:`COLUMNS` order, others after in order of appearance."""
    seen = [t for row in rows for t in row.cells]
    return [t for t in COLUMNS if t in seen] + [t for t in dict.fromkeys(seen) if t not in COLUMNS]


def planted_expectations(truth: dict, real_distribution: np.ndarray | None) -> tuple[str | None, dict[str, bool]]:
    """(description, {column: must be flagged}) of a planted generator, from its ``truth.json``.

    resample / dropmodes: a class mix other than the real one must be flagged by the class-skew
    test and the real mix must not; memoriser: a support of k images must be flagged by the
    support and diversity tests; lowrank: the spectrum test must flag the dropped directions.
    Trained and external GANs have no planted truth: (None, {}).
    """
    kind = truth.get("type")
    if kind in ("resample", "dropmodes") and "class_distribution" in truth and real_distribution is not None:
        planted = np.asarray(truth["class_distribution"], dtype=float)
        skewed = 0.5 * float(np.abs(planted - np.asarray(real_distribution, dtype=float)).sum()) > PLANTED_MIX_TOLERANCE
        missing = int(np.sum(planted == 0))
        words = (f"only {planted.size - missing} of {planted.size} classes" if missing else
                 "a skewed class mix" if skewed else "the real class mix")
        return f"planted: {words}", {"class skew": skewed}
    if kind == "memoriser":
        k = truth.get("support_size")
        return f"planted: {k} images + noise", {"support size": True, "diversity": True}
    if kind == "lowrank":
        return f"planted: rank-{truth.get('rank')} projection", {"spectrum": True}
    if kind == "blank":
        return f"planted: {truth.get('blank_fraction', 0):.0%} blank images", {}
    return None, {}


def build_row(gan: str, kind: str, results: list[dict], truth: dict,
              real_distribution: np.ndarray | None = None) -> Row:
    """The row of one GAN from its stages' JSON results (any order; those without verdicts are skipped)."""
    verdicts = [v for result in results for v in result.get("verdicts", [])]
    by_title: dict[str, list[dict]] = {}
    for verdict in verdicts:
        by_title.setdefault(column_of(verdict), []).append(verdict)
    planted, expected = planted_expectations(truth, real_distribution)
    titles = list(by_title)
    cells = adjust_family([headline(by_title[t]) for t in titles])
    return Row(gan=gan, kind=kind, cells=dict(zip(titles, cells)), verdicts=verdicts,
               planted=planted, expected=expected)


def p_text(verdict: dict) -> str:
    """``p = 0.003`` (two significant figures, ``p < 0.001`` below that); empty when undefined.
    A table cell, adjusted over its row, shows its own p-value, then the adjusted one when it
    differs: ``p = 0.034, Holm 0.27``."""
    def fmt(p: float) -> str:
        return "< 0.001" if p < 0.001 else f"{p:.2g}"

    p, single = verdict.get("p_value"), verdict.get("p_single")
    if p is None:
        return ""
    if single is None or fmt(single) == fmt(p):
        return "p " + (fmt(p) if p < 0.001 else "= " + fmt(p))
    return "p " + (fmt(single) if single < 0.001 else "= " + fmt(single)) + f", Holm {fmt(p)}"


def recovered_text(row: Row) -> str:
    if row.planted is None:
        return ""
    if row.recovered is None:
        return "no test checks this truth"
    return "recovered" if row.recovered else "not recovered: " + ", ".join(row.missed())


def text_table(rows: list[Row], width: int = 38) -> str:
    """The verdict table as plain text for the terminal: one block per GAN, one line per column."""
    lines = []
    for row in rows:
        head = f"{row.gan} ({row.planted or row.kind})"
        if row.planted:
            head += f": {recovered_text(row)}"
        lines.append(head)
        for title in columns_of([row]):
            cell = row.cells[title]
            mark = {"flagged": "!!", "not flagged": "ok", "undefined": "--"}[cell["state"]]
            lines.append(f"  {mark} {title:<{width - 16}} {cell['text']}" + (f" ({p_text(cell)})" if p_text(cell) else ""))
    return "\n".join(lines) + "\n"
