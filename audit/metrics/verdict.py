"""The one shape of every verdict the report prints.

A verdict is a statistical test with a stated error rate, never a hand-set threshold: the
stage that runs the test writes it into its JSON under ``"verdicts"`` (a list of
:meth:`Verdict.to_json` dicts), and the report's verdict table shows it as it is. The wording
is fixed by the test: ``finding`` when H0 is rejected at ``alpha`` (for example "skewed"),
``null_finding`` when it is not (for example "consistent with real"): not rejecting is
reported as "consistent with", never as proof.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

#: report colour states: the test rejected H0 (a problem found), did not, or could not run
STATES = ("flagged", "not flagged", "undefined")


@dataclass(frozen=True)
class Verdict:
    """One test of one GAN.

    ``test``: a stable id (``"skew.corrected"``); ``title``: the column title in the report
    (``"class skew"``); ``hypothesis``: H0 in words; ``p_value``: in [0, 1], or None when the
    test could not run (``reason`` says why); ``alpha``: the level; ``finding`` /
    ``null_finding``: the words printed when H0 is / is not rejected; ``key_number``: the
    figure printed beside them (``"class 3 at 2.5x its real share"``); ``interval``: the
    interval of the headline estimate, if any (``[low, high]``, same units as ``estimate``).
    """

    test: str
    title: str
    hypothesis: str
    p_value: float | None
    alpha: float
    finding: str
    null_finding: str
    key_number: str = ""
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    method: str = ""
    reason: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.p_value is not None and not (0 <= self.p_value <= 1):
            raise ValueError(f"p_value must be in [0, 1] or None, got {self.p_value}")
        if self.p_value is None and not self.reason:
            raise ValueError("a verdict without a p-value must say why (reason)")

    @property
    def rejected(self) -> bool | None:
        """H0 rejected at ``alpha``; None when the test could not run."""
        return None if self.p_value is None else bool(self.p_value < self.alpha)

    @property
    def state(self) -> str:
        return "undefined" if self.rejected is None else ("flagged" if self.rejected else "not flagged")

    @property
    def text(self) -> str:
        """The report cell: the finding in words, then its key number."""
        if self.rejected is None:
            return f"undefined: {self.reason}"
        words = self.finding if self.rejected else self.null_finding
        return f"{words}: {self.key_number}" if self.key_number else words

    def to_json(self) -> dict:
        out = asdict(self)
        out["interval"] = None if self.interval is None else [float(v) for v in self.interval]
        out.update(rejected=self.rejected, state=self.state, text=self.text)
        return out


def empirical_p_value(observed: float, null: np.ndarray) -> float:
    """Monte Carlo p-value of a statistic large under the alternative: (1 + #{null >= observed})
    / (1 + B), for (B,) draws ``null`` of the statistic under H0 (never 0, exact-size under H0
    when ``observed`` is exchangeable with the draws; Davison & Hinkley 1997, eq. 4.11)."""
    null = np.asarray(null, dtype=np.float64).ravel()
    if null.size == 0 or np.isnan(observed) or np.isnan(null).any():
        raise ValueError("empirical_p_value: need a statistic and at least one null draw, none NaN")
    return float((1 + np.count_nonzero(null >= observed)) / (1 + null.size))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values of a family, shape (m,) -> (m,): rejecting where the
    adjusted value is below alpha keeps the family-wise error rate at most alpha under any
    dependence between the tests (Holm 1979)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def adjust_family(verdicts: list[dict]) -> list[dict]:
    """The verdicts of one family (JSON dicts, :meth:`Verdict.to_json`) decided together.

    Each dict comes back with ``p_single`` (its own p-value, as the stage wrote it) and
    ``p_value`` replaced by the Holm-adjusted value over the family's defined p-values; its
    ``rejected``, ``state`` and ``text`` are decided on the adjusted value at its own ``alpha``.
    With a common alpha, the chance that any test of the family flags a true H0 is then at most
    alpha, where deciding each test alone would allow up to the sum of their levels. Undefined
    verdicts (p-value None) are not part of the family and come back unchanged.
    """
    defined = [i for i, v in enumerate(verdicts) if v["p_value"] is not None]
    adjusted = dict(zip(defined, holm([verdicts[i]["p_value"] for i in defined])))
    names = {f.name for f in fields(Verdict)}
    out = []
    for i, verdict in enumerate(verdicts):
        if i not in adjusted:
            out.append(dict(verdict, p_single=None))
            continue
        decided = Verdict(**{**{k: v for k, v in verdict.items() if k in names},
                             "interval": verdict.get("interval") and tuple(verdict["interval"]),
                             "p_value": float(adjusted[i])}).to_json()
        out.append({**verdict, **decided, "p_single": verdict["p_value"]})
    return out
