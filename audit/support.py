"""Stage ``support``: one GAN's support size by the birthday paradox, its verdict, curve and doppelganger sheet.

    python -m audit.support --search results/digits/support/dcgan/search.json \
        --pairs results/digits/support/dcgan/pairs.csv \
        --calibration results/digits/support/real_calibration.json \
        --samples results/digits/samples/dcgan/samples.npy --data results/digits/data \
        --nearest results/digits/memorisation/dcgan_nearest.csv --space features --alpha 0.05 \
        --bootstrap 1000 --seed 0 --out-json results/digits/support/dcgan/support.json \
        --table results/digits/support/dcgan/support.csv --curve results/digits/support/dcgan/curve.png \
        --sheet results/digits/support/dcgan/sheet.png

Reads the draws of ``support_pairs`` (exact duplicate counts per draw) and the listed pairs
``--pairs``. The estimate is the rule's (:mod:`audit.metrics.birthday`), unless a human has
filled the ``confirmed`` column of ``pairs.csv`` (yes / no; empty = not reviewed): then it is
computed from the confirmed pairs only, as Arora & Zhang did. A draw with any confirmation is
*reviewed*; its duplicates are the pairs marked yes; sizes without a reviewed draw are left out,
and so is every size from the first one where a reviewed draw has all its listed pairs
confirmed (its count is censored by the list; sizes below it are unaffected, so the choice does
not depend on the counts used). The verdict always uses the rule (its error rate is known; a
human's is not) and says where the estimate came from.

``pairs.csv`` is an input of this job only: editing it reruns this job and the report, never the
search (which would carry the confirmations over anyway, see :mod:`audit.support_pairs`).

Outputs: ``--out-json`` (``verdicts``, ``support`` (the headline), per-S figures, the rule's own
estimate, the confirmation summary), ``--table`` (per S), ``--curve`` (P(duplicate) and N_hat
against S), ``--sheet`` (for the smallest S with duplicates, each duplicate pair side by side
with the nearest training image of each, distances printed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.io import AuditInputError, load_json, load_table, save_json, save_table

YES, NO = {"yes", "y", "1", "true", "dup", "duplicate"}, {"no", "n", "0", "false", "not"}
#: pairs drawn on the doppelganger sheet at most
SHEET_PAIRS = 16


def read_pairs(path: str, search: dict) -> pd.DataFrame:
    """pairs.csv, validated against the search: columns, sizes, repeats, sample ids, and
    ``confirmed`` parsed to True / False / None (not reviewed); one-line errors naming the row."""
    if not Path(path).is_file():
        raise AuditInputError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, dtype={"confirmed": str, "rule_duplicate": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise AuditInputError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in ("size", "repeat", "sample_i", "sample_j", "distance", "rule_duplicate", "confirmed")
               if c not in table.columns]
    if missing:
        raise AuditInputError(f"{path}: missing column(s) {', '.join(missing)}")
    if table.empty:  # no grid size fitted the samples: a header only, read as text columns
        table = table.astype({"size": "int64", "repeat": "int64", "sample_i": "int64", "sample_j": "int64",
                              "distance": "float64"})
    for column in ("size", "repeat", "sample_i", "sample_j"):
        if not pd.api.types.is_integer_dtype(table[column]):
            raise AuditInputError(f"{path}: column {column} must hold whole numbers only (was it edited?)")
    sizes, n = set(search["sizes"]), search["n_samples"]
    for row, entry in enumerate(table.itertuples(index=False), start=2):  # line 1 is the header
        where = f"{path}: line {row}"
        if entry.size not in sizes or not 0 <= entry.repeat < search["repeats"]:
            raise AuditInputError(f"{where}: size {entry.size}, repeat {entry.repeat} is not a draw of the search")
        if not (0 <= entry.sample_i < n and 0 <= entry.sample_j < n) or entry.sample_i == entry.sample_j:
            raise AuditInputError(f"{where}: samples {entry.sample_i}, {entry.sample_j} are not two of the "
                                  f"{n} samples")
        value = str(entry.confirmed).strip().lower()
        if value and value not in YES | NO:
            raise AuditInputError(f"{where}: confirmed must be yes, no or empty, got '{entry.confirmed}'")
    table["confirmed"] = [None if not v.strip() else v.strip().lower() in YES for v in table["confirmed"]]
    table["rule_duplicate"] = table["rule_duplicate"].str.strip().str.lower().isin(YES)
    return table


def confirmed_counts(pairs: pd.DataFrame, listed_per_draw: int) -> tuple[dict, dict]:
    """(S -> (reviewed draws,) counts of pairs confirmed yes, summary) on the sizes the
    estimate may use: reviewed draws only, sizes before the first censored one."""
    reviewed = pairs.groupby(["size", "repeat"])["confirmed"].apply(lambda c: c.notna().any())
    counts, censored_at = {}, None
    for size in sorted(pairs["size"].unique()):
        draws = [r for (s, r), rev in reviewed.items() if s == size and rev]
        if not draws:
            continue
        c = np.array([int((pairs[(pairs["size"] == size) & (pairs["repeat"] == r)]["confirmed"] == True).sum())  # noqa: E712
                      for r in draws])
        if (c >= listed_per_draw).any():
            censored_at = int(size)
            break
        counts[int(size)] = c
    confirmed = pairs["confirmed"]
    return counts, {"reviewed_pairs": int(confirmed.notna().sum()), "confirmed_yes": int((confirmed == True).sum()),  # noqa: E712
                    "reviewed_draws": int(reviewed.sum()), "sizes_used": sorted(counts), "censored_from": censored_at,
                    "rule_flagged_rejected": int(((pairs["rule_duplicate"]) & (confirmed == False)).sum()),  # noqa: E712
                    "rule_missed_confirmed": int(((~pairs["rule_duplicate"]) & (confirmed == True)).sum())}  # noqa: E712


def sheet(pairs: pd.DataFrame, duplicate: pd.Series, samples, data, nearest: pd.DataFrame, space: str):
    """Rows of the doppelganger sheet: the duplicate pairs of the smallest S that has one (else
    the closest listed pairs of the largest S, marked as not duplicates)."""
    flagged = pairs[duplicate]
    if not flagged.empty:
        size = flagged["size"].min()
        chosen = flagged[flagged["size"] == size]
        heading = f"S = {size}: {len(chosen)} duplicate pair(s) in {chosen['repeat'].nunique()} draw(s)"
        # a pair drawn in several draws is shown once, closest pairs first
        chosen = chosen.drop_duplicates(["sample_i", "sample_j"]).sort_values(["distance", "sample_i", "sample_j"])
        heading += f", {len(chosen)} distinct"
    else:
        size = pairs["size"].max()
        chosen = pairs[(pairs["size"] == size) & (pairs["repeat"] == 0)]
        heading = f"no duplicate at any S; the closest pairs of one draw of S = {size} (not duplicates)"
    if len(chosen) > SHEET_PAIRS:
        heading += f", {SHEET_PAIRS} shown"
    rows, captions = [], []
    for entry in chosen.head(SHEET_PAIRS).itertuples(index=False):
        near = [nearest.loc[entry.sample_i], nearest.loc[entry.sample_j]]
        rows.append([np.asarray(samples[entry.sample_i]), np.asarray(samples[entry.sample_j])]
                    + [np.asarray(data.images[int(n[f"train_row_{space}"])]) for n in near])
        captions.append([f"sample {entry.sample_i}", f"{entry.sample_j}: d = {entry.distance:.3g}"]
                        + [f"train {int(n[f'train_row_{space}'])}, d = {n[f'distance_{space}']:.3g}" for n in near])
    return rows, captions, heading


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.support", __doc__, threads=False, device=False)
    add_inputs(parser, search="the support_pairs stage's draws (.json)",
               pairs="the listed pairs, possibly with human confirmations (.csv)",
               calibration="the support_calibration stage's rule (.json)",
               samples="the GAN's uint8 samples (.npy)", data="prepared dataset directory (training images)",
               nearest="the memorisation stage's nearest training image of each sample (.csv)")
    parser.add_argument("--space", required=True, choices=["features", "pixels"], help="config support.space")
    parser.add_argument("--alpha", type=float, required=True, help="level of the verdict (config support.alpha)")
    parser.add_argument("--bootstrap", type=int, required=True, help="bootstrap replicates (config support.bootstrap)")
    add_outputs(parser, out_json="verdict, estimate and per-S figures (.json)", table="per-S figures (.csv)",
                curve="P(duplicate) and N_hat against S (.png)", sheet="the doppelganger sheet (.png)")
    args = parser.parse_args(argv)
    if not 0 < args.alpha < 1:
        raise AuditInputError(f"support.alpha: must be in (0, 1), got {args.alpha}")
    if args.bootstrap < 10:
        raise AuditInputError(f"support.bootstrap: must be >= 10, got {args.bootstrap}")

    from audit.data.store import PreparedDataset
    from audit.io import load_images
    from audit.metrics import birthday as bd

    search, calibration = load_json(args.search), load_json(args.calibration)
    for key in ("counts", "sizes", "thresholds", "n_samples", "repeats", "pairs_per_draw", "quantile"):
        if key not in search:
            raise AuditInputError(f"{args.search}: not a support_pairs output (no '{key}')")
    pairs = read_pairs(args.pairs, search)
    counts = {int(s): np.asarray(c, dtype=np.int64) for s, c in search["counts"].items()}
    q = float(search["quantile"])
    rule_summary = None
    if counts:  # a number only where the test finds more duplicates than real draws hold
        table, rule_summary, _ = bd.estimate_from_counts(counts, q, args.alpha, args.bootstrap, args.seed,
                                                         search["n_samples"])
    else:
        table = pd.DataFrame(columns=["size", "draws", "draws_with_duplicate", "p_duplicate", "p_low", "p_high",
                                      "mean_pairs", "n_hat", "n_hat_low", "n_hat_high"])
    rates = pd.DataFrame(calibration.get("false_rates", []))
    if not table.empty:
        table["threshold"] = [search["thresholds"][str(s)]["threshold"] for s in table["size"]]
        table["threshold_kind"] = [search["thresholds"][str(s)]["kind"] for s in table["size"]]
        table["real_false_rate"] = table["size"].map(rates.set_index("size")["rate"]) if not rates.empty else np.nan
    confirmation, headline, source = None, rule_summary, "rule"
    if pairs["confirmed"].notna().any():
        conf_counts, confirmation = confirmed_counts(pairs, search["pairs_per_draw"])
        if conf_counts:
            conf_table = bd.per_size_table(conf_counts, args.bootstrap, args.seed)
            headline = bd.summarise(conf_counts, conf_table, True, args.bootstrap, args.seed, search["n_samples"])
            confirmation["per_size"] = conf_table.to_dict(orient="records")
        else:
            headline = {"kind": "undetermined", "text": "support undetermined (no usable reviewed draw)"}
        source = f"confirmed by hand ({confirmation['reviewed_pairs']} pairs reviewed)"
    if headline is None:
        headline = {"kind": "undetermined", "text": "support undetermined (no draw size fits the samples)"}
    verdict = bd.birthday_verdict(table, q, args.alpha, headline["text"], search["n_samples"],
                                  estimate=headline.get("estimate"),
                                  interval=(headline["low"], headline["high"]) if headline["kind"] == "estimate" else None)
    verdict.extra["estimate_source"] = source
    save_json(args.out_json, {"search": args.search, "n_samples": search["n_samples"], "quantile": q,
                              "alpha": args.alpha, "source": source, "support": headline, "rule_support": rule_summary,
                              "confirmation": confirmation, "per_size": table.to_dict(orient="records"),
                              "sizes_skipped": search.get("sizes_skipped", []), "verdicts": [verdict.to_json()]})
    save_table(args.table, table)

    from audit.plots.support import plot_image_rows, plot_support_curve

    plot_support_curve(table, args.curve, quantile=q, false_rates=rates, headline=headline["text"],
                       title="Birthday test")
    duplicate = pairs["confirmed"].map(lambda v: v is True) if confirmation else pairs["rule_duplicate"]
    nearest = load_table(args.nearest, ("sample", f"train_row_{args.space}", f"distance_{args.space}"))
    if len(nearest) != search["n_samples"]:
        raise AuditInputError(f"{args.nearest}: {len(nearest)} rows for {search['n_samples']} samples")
    rows, captions, heading = (sheet(pairs, duplicate, load_images(args.samples), PreparedDataset.open(args.data),
                                     nearest.set_index("sample"), args.space) if not pairs.empty else ([], [], ""))
    plot_image_rows(rows, captions, args.sheet, title=f"Doppelgangers ({args.space}; {source}): {heading}",
                    column_titles=["sample", "its duplicate", "nearest train: sample", "nearest train: duplicate"],
                    note="no pair was listed")
    print(f"{verdict.text} (p = {verdict.p_value}; estimate from the {source})")


if __name__ == "__main__":
    run_cli(main)
