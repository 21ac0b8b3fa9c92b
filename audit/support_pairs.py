"""Stage ``support_pairs``: the birthday draws of one GAN and the candidate duplicate pairs for a human.

    python -m audit.support_pairs --calibration results/digits/support/real_calibration.json \
        --vectors results/digits/features/dcgan.npy --samples results/digits/samples/dcgan/samples.npy \
        --repeats 20 --pairs-per-draw 20 --seed 0 --threads 1 --device auto \
        --search results/digits/support/dcgan/search.json --pairs results/digits/support/dcgan/pairs.csv

``--vectors``: the GAN's samples in the support space (the features stage's ``<gan>.npy``, or
the samples themselves for pixel space); ``--samples``: the uint8 samples (for the pair keys).
For every grid S up to the number of samples and ``--repeats`` seeded draws of S samples
(:func:`audit.metrics.birthday.search_draws`): the exact number of pairs below the calibrated
t_S (all pairs of the draw, chunked), and its ``--pairs-per-draw`` closest pairs.

``--search`` (JSON): the counts per S and draw, the thresholds, the settings.
``--pairs`` (CSV): one row per listed pair: size, repeat, rank, sample_i, sample_j (rows of
the samples), distance, threshold, rule_duplicate (yes / no), pair_key (a hash of the two
images), and an empty ``confirmed`` column for a human to fill with yes / no (the support stage
then estimates from the confirmed pairs). The rule declares this file Snakemake ``update()``:
if the search reruns (new samples, new settings), the old file is read first and every
confirmation whose pair (size, repeat, samples and their images' hash) is listed again is
carried over; the others are reported in the log (Snakemake keeps a backup of the old file).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.io import AuditInputError, load_images, load_json, save_json, save_table

#: what identifies a listed pair across reruns
PAIR_ID = ["size", "repeat", "sample_i", "sample_j", "pair_key"]
PAIR_COLUMNS = ["size", "repeat", "rank", "sample_i", "sample_j", "distance", "threshold", "rule_duplicate",
                "pair_key", "confirmed"]


def pair_keys(samples: np.ndarray, i: np.ndarray, j: np.ndarray) -> list[str]:
    """A 16-hex-digit hash of the bytes of images i and j of each pair."""
    return [hashlib.blake2b(samples[a].tobytes() + samples[b].tobytes(), digest_size=8).hexdigest()
            for a, b in zip(i.tolist(), j.tolist())]


def carry_confirmations(table: pd.DataFrame, old_path: str) -> tuple[pd.DataFrame, int, int]:
    """(table with ``confirmed`` filled from the previous file, carried, dropped): a
    confirmation survives when its pair is listed again with the same images."""
    table = table.assign(confirmed="")
    if not Path(old_path).is_file():
        return table, 0, 0
    try:
        old = pd.read_csv(old_path, dtype={"confirmed": str, "pair_key": str}, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError):
        print(f"{old_path}: the previous file is not a readable CSV; no confirmation carried over")
        return table, 0, 0
    if not set(PAIR_ID + ["confirmed"]) <= set(old.columns):
        print(f"{old_path}: the previous file lacks the pair columns; no confirmation carried over")
        return table, 0, 0
    old = old[old["confirmed"].str.strip() != ""]
    known = {tuple(str(v) for v in row): c for row, c in zip(old[PAIR_ID].itertuples(index=False), old["confirmed"])}
    ids = [tuple(str(v) for v in row) for row in table[PAIR_ID].itertuples(index=False)]
    table["confirmed"] = [known.get(key, "") for key in ids]
    carried = int((table["confirmed"] != "").sum())
    return table, carried, len(known) - carried


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.support_pairs", __doc__)
    add_inputs(parser, calibration="the support_calibration stage's rule (.json)",
               vectors="the GAN's samples in the support space: features (.npy) or uint8 samples (.npy)",
               samples="the GAN's uint8 (N, H, W, C) samples (.npy)")
    parser.add_argument("--repeats", type=int, required=True, help="draws per S (config support.repeats)")
    parser.add_argument("--pairs-per-draw", type=int, required=True,
                        help="closest pairs listed per draw (config support.pairs)")
    add_outputs(parser, search="counts per S and draw (.json)",
                pairs="the listed pairs with an empty confirmed column (.csv; confirmations carried over)")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        raise AuditInputError(f"support.repeats: must be >= 2, got {args.repeats}")
    if args.pairs_per_draw < 1:
        raise AuditInputError(f"support.pairs: must be >= 1, got {args.pairs_per_draw}")

    from audit.features import load_vectors
    from audit.metrics import birthday as bd
    from audit.runtime import configure_torch, resolve_device

    configure_torch(args.threads, args.seed)
    device = resolve_device(args.device)
    calibration = load_json(args.calibration)
    if "rule" not in calibration or "thresholds" not in calibration["rule"]:
        raise AuditInputError(f"{args.calibration}: not a support_calibration output (no rule.thresholds)")
    vectors = load_vectors(args.vectors)
    samples = load_images(args.samples)
    if vectors.shape[0] != samples.shape[0]:
        raise AuditInputError(f"{args.vectors} has {vectors.shape[0]} rows but {args.samples} {samples.shape[0]} images")
    thresholds = {int(s): float(v["threshold"]) for s, v in calibration["rule"]["thresholds"].items()
                  if int(s) <= vectors.shape[0]}
    skipped = sorted(int(s) for s in calibration["rule"]["thresholds"] if int(s) > vectors.shape[0])
    counts, listed = bd.search_draws(vectors, dict(sorted(thresholds.items())), args.repeats, args.pairs_per_draw,
                                     args.seed, device=device)
    listed["rule_duplicate"] = np.where(listed["rule_duplicate"].astype(bool), "yes", "no")
    listed["pair_key"] = pair_keys(samples, listed["sample_i"].to_numpy(int), listed["sample_j"].to_numpy(int))
    listed, carried, dropped = carry_confirmations(listed, args.pairs)
    save_json(args.search, {
        "vectors": args.vectors, "n_samples": int(vectors.shape[0]), "repeats": args.repeats,
        "pairs_per_draw": args.pairs_per_draw, "seed": args.seed, "quantile": calibration["quantile"],
        "sizes": sorted(thresholds), "sizes_skipped": skipped,
        "thresholds": {str(s): calibration["rule"]["thresholds"][str(s)] for s in sorted(thresholds)},
        "counts": {str(s): c.tolist() for s, c in counts.items()},
    })
    save_table(args.pairs, listed[PAIR_COLUMNS])
    if carried or dropped:
        print(f"{args.pairs}: {carried} confirmation(s) carried over, {dropped} not listed again (their pairs or "
              "images changed; Snakemake's backup of the previous file is under .snakemake/)")
    for size, c in counts.items():
        print(f"S = {size}: {np.count_nonzero(c)} of {c.size} draws with a duplicate, {c.mean():.2f} duplicate pairs per draw")


if __name__ == "__main__":
    run_cli(main)
