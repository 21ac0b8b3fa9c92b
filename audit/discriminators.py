"""Stage ``discriminators``: can a finite discriminator tell a GAN's samples from real images?

    python -m audit.discriminators --name dcgan --data results/digits/data \
        --samples results/digits/samples/dcgan/samples.npy \
        --ladder '[{"arch": "linear"}, {"arch": "smallcnn", "width": 0.25}, {"arch": "smallcnn", "width": 0.5}, \
                   {"arch": "auto", "role": "annotator"}]' \
        --steps 300 --batch-size 32 --lr 0.002 --linear-lr 0.03 --weight-decay 0.0005 --seeds 2 --max-per-class 5000 \
        --alpha 0.05 --bootstrap 1000 --seed 0 --threads 1 --device auto \
        --out-json results/digits/discriminators/dcgan.json --out-csv results/digits/discriminators/dcgan.csv \
        --out-png results/digits/discriminators/dcgan.png
    python -m audit.discriminators demo --data results/digits/data --calibration \
        results/digits/support/real_calibration.json --annotator results/digits/annotator/model.pt \
        --space features --k 10 30 100 300 --noise-std 2 --n 4000 --repeats 20 --ladder ... (as above) \
        --out-json results/digits/discriminators/demo.json --out-csv results/digits/discriminators/demo.csv \
        --out-png results/digits/discriminators/demo.png

Arora, Ge, Liang, Ma & Zhang (2017): a discriminator with p parameters cannot tell the real
distribution from a uniform distribution on about p log p / eps^2 of its samples. Here every GAN
meets a **ladder** of fresh discriminators of increasing capacity (capacity = parameter count;
``--ladder`` entries: ``linear`` (logistic regression on the pixels in [-1, 1]), or a
:func:`audit.models.classifier.build_classifier` architecture with an optional ``width`` of the
small CNN). Each is trained for a fixed budget of ``--steps`` AdamW steps (the diversity
classifiers' one-cycle schedule, :func:`audit.models.classifier.train_classifier`; no
augmentation) on balanced sets: real **train**-split images (label real) against as many GAN
samples; of the checkpoints along the budget it keeps the one of lowest cross-entropy on the
**val** set (real val images against other GAN samples, ``SELECTION``), and its score is
calibrated on the same val set twice: isotonic regression decides GAN or real for the accuracy
test, Platt scaling gives the probabilities of the JS bound (``CALIBRATION``; TWO_SAMPLE.md,
"Model selection" and "Calibration");
it is scored on real **test** images against as many GAN samples that neither training nor
calibration saw (the samples are split at random: :func:`split_samples`). ``--seeds`` seeds per
rung; their calibrated probabilities are averaged (one ensemble discriminator per rung). The
statistics (exact binomial test, JS lower bound, bootstrap, Holm over the ladder) are
:mod:`audit.metrics.two_sample`; the method note is ``audit/metrics/TWO_SAMPLE.md``.

Outputs: ``--out-json`` (``verdicts``: one "finite discriminators" verdict; ``ladder``: one record
per rung), ``--out-csv`` (one row per rung), ``--out-png`` (accuracy and JS bound against
capacity). ``demo``: memorisers of k pool images (:func:`audit.gans.planted.make_memoriser`)
against the same ladder, and the birthday test's support estimate for each
(:mod:`audit.metrics.birthday`, with the support stage's calibrated rule): the heat map of
held-out accuracy by k and capacity. Wall-clock times go to the log only.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

import numpy as np

from audit.cli import add_outputs, run_cli, stage_parser
from audit.io import AuditInputError, load_images, load_json, save_json, save_table
from audit.metrics import two_sample as ts
from audit.runtime import run_seed

#: sub-streams of the run seed
ROLE_SPLIT, ROLE_FIT, ROLE_BOOT, ROLE_DEMO = 150, 151, 152, 153
#: the fewest held-out images per class a test needs, and training images per class
MIN_TEST, MIN_TRAIN = 10, 2
#: training accuracy is measured on at most this many training images
MAX_TRAIN_EVAL = 2000
#: how each discriminator's weights are chosen among the checkpoints of its step budget (every
#: ``steps // CHECKPOINTS`` steps and the last): ``val_loss``, the lowest val cross-entropy; ``last``, the
#: last weights (before issue 15's blank must-show; kept for benchmarks/discriminators.py)
SELECTION = "val_loss"
SELECTIONS = ("val_loss", "last")
#: checkpoints along the step budget that selection chooses from (every ``steps // CHECKPOINTS``)
CHECKPOINTS = 10
#: which calibration of each discriminator's score (both fitted on the val set) decides GAN or real
#: for the accuracy test: ``isotonic`` or ``platt``; the JS bound always uses Platt's smooth
#: probabilities (TWO_SAMPLE.md, "Calibration")
CALIBRATION = "isotonic"
LADDER_KEYS = {"arch", "width", "role"}


@dataclass(frozen=True)
class Rung:
    """One discriminator of the ladder: ``arch`` (``linear`` or a classifier architecture, resolved
    for the image size), ``width`` (small CNN), ``role`` (``annotator``: the annotator's architecture)."""

    arch: str
    width: float = 1.0
    role: str = ""

    @property
    def label(self) -> str:
        if self.arch == "linear":
            return "logistic regression"
        name = {"smallcnn": "CNN", "resnet18": "ResNet-18"}[self.arch]
        name += "" if self.width == 1.0 else f" x{self.width:g}"
        return f"{name} (annotator's)" if self.role == "annotator" else name


def parse_ladder(text: str, image_shape) -> list[Rung]:
    """The ``--ladder`` JSON list, checked (one-line errors naming ``discriminators.ladder``)."""
    from audit.models.classifier import ARCHITECTURES, choose_architecture

    try:
        entries = json.loads(text)
    except json.JSONDecodeError as err:
        raise AuditInputError(f"discriminators.ladder: not valid JSON ({err.msg})") from None
    if not isinstance(entries, list) or not entries:
        raise AuditInputError("discriminators.ladder: expected a non-empty list of discriminators")
    rungs = []
    for i, entry in enumerate(entries):
        where = f"discriminators.ladder[{i}]"
        if not isinstance(entry, dict) or not set(entry) <= LADDER_KEYS or "arch" not in entry:
            raise AuditInputError(f"{where}: expected {{arch: ..., width: ...}}, got {entry!r}")
        arch = entry["arch"] if entry["arch"] == "linear" else choose_architecture(entry["arch"], image_shape)
        width = entry.get("width", 1.0)
        if arch not in ("linear", *ARCHITECTURES):
            raise AuditInputError(f"{where}.arch: expected linear, auto or one of {ARCHITECTURES}, got {arch!r}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise AuditInputError(f"{where}.width: expected a positive number, got {width!r}")
        if width != 1.0 and arch != "smallcnn":
            raise AuditInputError(f"{where}.width: applies to the small CNN only, not to {arch}")
        rungs.append(Rung(arch, float(width), str(entry.get("role", ""))))
    return rungs


def build_rung(rung: Rung, image_shape):
    """A fresh two-class discriminator (logits: real, GAN) for (H, W, C) images."""
    from torch import nn

    from audit.models.classifier import build_classifier

    if rung.arch == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(image_shape)), 2))
    return build_classifier(rung.arch, tuple(image_shape), 2, width=rung.width)


def parameter_count(rung: Rung, image_shape) -> int:
    return int(sum(p.numel() for p in build_rung(rung, image_shape).parameters()))


# --- the balanced sets ------------------------------------------------------------------------

def split_sizes(real_sizes: dict, n_samples: int, max_per_class: int) -> dict:
    """Images per class of each set: ``min(real split size, max_per_class)``, all three scaled
    down together when the samples cannot fill them (never more samples than exist)."""
    want = {name: min(size, max_per_class) for name, size in real_sizes.items()}
    total = sum(want.values())
    if total > n_samples:
        want = {name: int(size * n_samples // total) for name, size in want.items()}
    return want


def split_samples(n_samples: int, sizes: dict, seed: int) -> dict:
    """Disjoint seeded random rows of the GAN samples for train / val / test (``sizes`` each)."""
    order = np.random.default_rng(run_seed(seed, ROLE_SPLIT, n_samples)).permutation(n_samples)
    out, start = {}, 0
    for name in ("train", "val", "test"):
        out[name] = np.sort(order[start:start + sizes[name]])
        start += sizes[name]
    return out


def balanced_sets(real: dict, samples: np.ndarray, seed: int, max_per_class: int) -> dict:
    """name -> (uint8 images, (2n,) labels 0 real / 1 GAN): n real images of split ``name`` (a
    seeded subset when the split is larger) and n GAN samples, for train, val and test."""
    sizes = split_sizes({name: x.shape[0] for name, x in real.items()}, samples.shape[0], max_per_class)
    rows = split_samples(samples.shape[0], sizes, seed)
    sets = {}
    for i, name in enumerate(("train", "val", "test")):
        n, pool = sizes[name], real[name]
        pick = np.sort(np.random.default_rng(run_seed(seed, ROLE_SPLIT, i)).choice(pool.shape[0], n, replace=False))
        images = np.concatenate([np.asarray(pool[pick]), np.asarray(samples[rows[name]])])
        sets[name] = (images, np.repeat(np.array([0, 1], dtype=np.int64), n))
    return sets


# --- training ---------------------------------------------------------------------------------

def fit_rung(shared: dict, task: tuple) -> dict:
    """Train rung ``task[0]`` with seed index ``task[1]`` (a :func:`audit.runtime.parallel_map`
    task): its val and test logits, its training accuracy and the step of the kept weights
    (``recipe["selection"]``: :data:`SELECTIONS`)."""
    import torch

    from audit.models.classifier import predict_logits, train_classifier

    index, seed_index = task
    rung, (train_x, train_y), recipe = shared["rungs"][index], shared["sets"]["train"], shared["recipe"]
    seed = run_seed(shared["seed"], ROLE_FIT, index, seed_index)
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = build_rung(rung, train_x.shape[1:])
    lr = recipe["linear_lr"] if rung.arch == "linear" else recipe["lr"]
    if recipe["selection"] not in SELECTIONS:
        raise ValueError(f"fit_rung: selection must be one of {SELECTIONS}, got {recipe['selection']!r}")
    val = shared["sets"]["val"] if recipe["selection"] == "val_loss" else (None, None)
    # patience = the budget: every checkpoint of the budget is a candidate (no early end)
    result = train_classifier(model, train_x, train_y, *val, steps=recipe["steps"], batch_size=recipe["batch_size"],
                              lr=lr, weight_decay=recipe["weight_decay"], seed=seed, device=recipe["device"],
                              select="loss", patience=recipe["steps"],
                              eval_every=max(1, recipe["steps"] // recipe["checkpoints"]))
    sub = np.random.default_rng(seed).permutation(train_y.size)[:MAX_TRAIN_EVAL]
    train_pred = predict_logits(result.model, train_x[sub], device=recipe["device"]).argmax(1).numpy()
    return {"val": predict_logits(result.model, shared["sets"]["val"][0], device=recipe["device"]).double().numpy(),
            "test": predict_logits(result.model, shared["sets"]["test"][0], device=recipe["device"]).double().numpy(),
            "train_accuracy": float(np.mean(train_pred == train_y[sub])), "selected_step": int(result.best_step),
            "seconds": time.perf_counter() - start}


def calibrated_prob_fake(val_logits: np.ndarray, val_y: np.ndarray, test_logits: np.ndarray,
                         decide_by: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(Platt's P(GAN | x) on the test images, the P(GAN | x) that decides, Platt's {slope,
    intercept}), both calibrations fitted on the val images' logit difference: Platt
    (:func:`audit.metrics.two_sample.platt_fit`, smooth: the JS bound's) and, for ``decide_by``
    ``isotonic``, :func:`audit.metrics.two_sample.isotonic_prob_fake` (flat where the score
    carries no information: the decisions'); ``platt``: Platt decides too."""
    val_s, test_s = val_logits[:, 1] - val_logits[:, 0], test_logits[:, 1] - test_logits[:, 0]
    slope, intercept = ts.platt_fit(val_s, val_y == 1)
    platt = ts.platt_prob_fake(test_s, slope, intercept)
    decide = ts.isotonic_prob_fake(val_s, val_y == 1, test_s) if decide_by == "isotonic" else platt
    return platt, decide, {"slope": slope, "intercept": intercept}


def run_ladder(sets: dict, rungs: list[Rung], recipe: dict, seeds: int, seed: int, workers: int,
               n_boot: int, label: str = "", keep_probs: bool = False) -> list[dict]:
    """Every rung trained ``seeds`` times on ``sets`` (:func:`balanced_sets`), scored on the test
    set: one record per rung (accuracy test, JS bound and their joint bootstrap intervals);
    ``keep_probs``: each record also holds ``test_prob_fake``, the deciding ensemble (2n,) P(GAN | x) on
    the test set in its order (real images, then the GAN samples; benchmarks only)."""
    from audit.runtime import parallel_map

    shape = sets["train"][0].shape[1:]
    tasks = [(i, s) for i in range(len(rungs)) for s in range(seeds)]

    def each(task, result):
        print(f"{label}{rungs[task[0]].label} seed {task[1]}: train accuracy {result['train_accuracy']:.3f}, "
              f"weights of step {result['selected_step']} ({result['seconds']:.1f}s)", flush=True)

    shared = {"rungs": rungs, "sets": sets, "recipe": recipe, "seed": seed}
    fits = parallel_map(fit_rung, tasks, shared, workers, device=recipe["device"], each=each)
    is_fake = sets["test"][1] == 1
    records = []
    for i, rung in enumerate(rungs):
        mine = [fit for (r, _), fit in zip(tasks, fits) if r == i]
        calibrated = [calibrated_prob_fake(f["val"], sets["val"][1], f["test"], recipe["calibration"]) for f in mine]
        probs, decide = np.stack([c[0] for c in calibrated]), np.stack([c[1] for c in calibrated])
        ensemble = probs.mean(axis=0)
        test = ts.accuracy_test(decide.mean(axis=0), is_fake)
        boot = ts.bootstrap_ladder_rung(probs, is_fake, n_boot, np.random.default_rng(run_seed(seed, ROLE_BOOT, i)),
                                        decide)
        js = float(ts.js_lower_bound(ensemble, is_fake))
        records.append({
            "label": rung.label, "arch": rung.arch, "width": rung.width, "role": rung.role,
            "parameters": parameter_count(rung, shape), **test, "accuracy_interval": list(boot["accuracy_interval"]),
            "cross_entropy": float(ts.cross_entropy(ensemble, is_fake)), "js_bound": max(0.0, js),
            "js_bound_unclipped": js, "js_interval": list(boot["js_interval"]),
            "js_replicates_above_zero": boot["js_replicates_above_zero"],
            "seed_accuracies": [float(np.mean((p > 0.5) == is_fake)) for p in decide],
            "train_accuracies": [f["train_accuracy"] for f in mine],
            "selected_steps": [f["selected_step"] for f in mine], "calibration": [c[2] for c in calibrated],
            **({"test_prob_fake": decide.mean(axis=0)} if keep_probs else {})})
    for record, adjusted in zip(records, ts.holm([r["p_value"] for r in records])):
        record["p_holm"] = float(adjusted)
    return records


# --- command lines ----------------------------------------------------------------------------

def add_ladder_options(parser) -> None:
    """The options every ladder run takes (config ``discriminators.*``)."""
    parser.add_argument("--ladder", required=True, help="JSON list of discriminators (config discriminators.ladder)")
    for flag, kind, what in (("steps", int, "optimisation steps per discriminator"), ("batch-size", int, "batch size"),
                             ("lr", float, "peak learning rate of the networks"),
                             ("linear-lr", float, "peak learning rate of the logistic regression"),
                             ("weight-decay", float, "AdamW weight decay"), ("seeds", int, "training seeds per rung"),
                             ("max-per-class", int, "at most this many real (and as many GAN) images per set"),
                             ("alpha", float, "level of the test"), ("bootstrap", int, "bootstrap replicates")):
        parser.add_argument(f"--{flag}", type=kind, required=True, help=f"{what} (config discriminators.{flag.replace('-', '_')})")


def check_ladder_options(args) -> dict:
    """The recipe of every fit, with one-line errors naming the config key."""
    for key, low in (("steps", 1), ("batch_size", 2), ("seeds", 1), ("max_per_class", MIN_TEST), ("bootstrap", 10)):
        if getattr(args, key) < low:
            raise AuditInputError(f"discriminators.{key}: must be >= {low}, got {getattr(args, key)}")
    for key in ("lr", "linear_lr"):
        if not getattr(args, key) > 0:
            raise AuditInputError(f"discriminators.{key}: must be > 0, got {getattr(args, key)}")
    if not 0 < args.alpha < 1 or args.weight_decay < 0:
        raise AuditInputError(f"discriminators.alpha / weight_decay: alpha in (0, 1), weight_decay >= 0; got "
                              f"{args.alpha}, {args.weight_decay}")
    return {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "linear_lr": args.linear_lr,
            "weight_decay": args.weight_decay, "selection": SELECTION, "checkpoints": CHECKPOINTS,
            "calibration": CALIBRATION}


def real_splits(data) -> dict:
    """The real train, val and test images (memory-mapped views)."""
    from audit.metrics.covariance import RowSubset

    return {name: RowSubset(data.images, data.rows(name)) for name in ("train", "val", "test")}


def audit_gan(real: dict, samples: np.ndarray, rungs: list[Rung], recipe: dict, args, workers: int,
              label: str = "", keep_probs: bool = False) -> tuple[list[dict], dict]:
    """(rung records, set sizes) of one image set against the ladder; records carry a ``reason``
    and no p-value when the sets are too small to test."""
    sizes = split_sizes({n: x.shape[0] for n, x in real.items()}, samples.shape[0], args.max_per_class)
    if sizes["test"] < MIN_TEST or sizes["train"] < MIN_TRAIN or sizes["val"] < 1:
        reason = (f"too few images for held-out sets: {sizes['train']} train / {sizes['val']} val / {sizes['test']} "
                  f"test per class (need {MIN_TRAIN} / 1 / {MIN_TEST})")
        return [{"label": r.label, "parameters": parameter_count(r, samples.shape[1:]), "p_value": None,
                 "reason": reason} for r in rungs], sizes
    sets = balanced_sets(real, samples, args.seed, args.max_per_class)
    return run_ladder(sets, rungs, recipe, args.seeds, args.seed, workers, args.bootstrap, label, keep_probs), sizes


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["demo"]:
        return demo_main(argv[1:])
    parser = stage_parser("audit.discriminators", __doc__)
    parser.add_argument("--name", required=True, help="the GAN's name (config gans)")
    parser.add_argument("--data", required=True, help="prepared dataset directory")
    parser.add_argument("--samples", required=True, help="the GAN's uint8 (N, H, W, C) samples (.npy)")
    add_ladder_options(parser)
    add_outputs(parser, out_json="verdict and one record per rung (.json)", out_csv="one row per rung (.csv)",
                out_png="accuracy and JS bound against capacity (.png)")
    args = parser.parse_args(argv)
    recipe = check_ladder_options(args)

    from audit.data.store import PreparedDataset
    from audit.runtime import configure_workers, resolve_device

    workers = configure_workers(args.threads, args.seed)
    recipe["device"] = resolve_device(args.device)
    data = PreparedDataset.open(args.data)
    samples = load_images(args.samples)
    if samples.shape[1:] != data.images.shape[1:]:
        raise AuditInputError(f"{args.samples}: samples of shape {samples.shape[1:]}, real images {data.images.shape[1:]}")
    rungs = parse_ladder(args.ladder, data.images.shape[1:])
    records, sizes = audit_gan(real_splits(data), samples, rungs, recipe, args, workers)
    verdict = ts.ladder_verdict(records, args.alpha)
    save_json(args.out_json, {
        "name": args.name, "n_samples": int(samples.shape[0]), "images_per_class": sizes, "seeds": args.seeds,
        "recipe": {k: v for k, v in recipe.items() if k != "device"}, "alpha": args.alpha, "bootstrap": args.bootstrap,
        "seed": args.seed, "ladder": records, "verdicts": [verdict.to_json()]})
    import pandas as pd

    table = pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, list)} for r in records])
    save_table(args.out_csv, table)
    from audit.plots.discriminators import plot_ladder

    plot_ladder(records, args.alpha, args.out_png, title=f"{args.name}: discriminators of increasing capacity")
    print(table.to_string(index=False))
    print(verdict.text)



# --- the demonstration: memorisers of k pool images against the ladder ---------------------------

def birthday_support(vectors, calibration: dict, repeats: int, n_boot: int, alpha: float, seed: int,
                     device: str) -> dict:
    """The support stage's birthday estimate of one image set (:mod:`audit.metrics.birthday`):
    ``vectors`` in the calibration's space, the rule's thresholds for every grid S the set holds."""
    from audit.metrics import birthday as bd

    n = vectors.shape[0]
    thresholds = {int(s): float(v["threshold"]) for s, v in calibration["rule"]["thresholds"].items() if int(s) <= n}
    counts, _ = bd.search_draws(vectors, dict(sorted(thresholds.items())), repeats, 1, seed, device=device)
    _, head, verdict = bd.estimate_from_counts(counts, calibration["quantile"], alpha, n_boot, seed, n)
    return {"support_text": head["text"], "support_kind": head["kind"], "support_estimate": head["estimate"],
            "support_low": head["low"], "support_high": head["high"], "support_bound": head["bound"],
            "birthday_p_value": verdict.p_value, "birthday_rejected": verdict.rejected}


def demo_finding(cells: list[dict], birthday: dict, alpha: float) -> list[str]:
    """Sentences stating, per rung, the smallest k at which it no longer tells the memoriser apart
    (Holm-adjusted p >= alpha) while the birthday test still finds a small support at that k;
    none where the numbers do not show it."""
    sentences = []
    for label in dict.fromkeys(c["label"] for c in cells):
        mine = sorted((c for c in cells if c["label"] == label and c.get("p_holm") is not None), key=lambda c: c["k"])
        missed = [c for c in mine if c["p_holm"] >= alpha and birthday[c["k"]]["birthday_rejected"]]
        if missed:
            c, b = missed[0], birthday[missed[0]["k"]]
            sentences.append(
                f"the {ts.format_parameters(c['parameters'])}-parameter {label} does not tell a memoriser of k = "
                f"{c['k']} images from real ones (held-out accuracy {c['accuracy']:.3f}, Holm p = {c['p_holm']:.3g}), "
                f"while the birthday test finds its small support ({b['support_text']}, p = {b['birthday_p_value']:.2g})")
    return sentences


def demo_main(argv: list[str]) -> None:
    parser = stage_parser("audit.discriminators demo", __doc__)
    parser.add_argument("--data", required=True, help="prepared dataset directory (the memorisers draw from its pool)")
    parser.add_argument("--calibration", required=True, help="the support_calibration stage's rule (.json)")
    parser.add_argument("--space", choices=("features", "pixels"), required=True, help="config support.space")
    parser.add_argument("--annotator", help="the annotator (.pt): required for --space features")
    parser.add_argument("--k", type=int, nargs="+", required=True, help="memorised images (config discriminators.demo_k)")
    parser.add_argument("--noise-std", type=float, required=True, help="memoriser noise, grey levels")
    parser.add_argument("--n", type=int, required=True, help="samples per memoriser")
    parser.add_argument("--repeats", type=int, required=True, help="birthday draws per S (config support.repeats)")
    add_ladder_options(parser)
    add_outputs(parser, out_json="the cells and the birthday estimates (.json)", out_csv="one row per cell (.csv)",
                out_png="heat map of held-out accuracy by k and capacity (.png)")
    args = parser.parse_args(argv)
    recipe = check_ladder_options(args)
    if min(args.k) < 1 or args.n < 2 or args.noise_std < 0 or args.repeats < 2:
        raise AuditInputError(f"discriminators.demo_k / demo_n / demo_noise_std / support.repeats: need k >= 1, n >= 2, "
                              f"noise >= 0, repeats >= 2; got {args.k}, {args.n}, {args.noise_std}, {args.repeats}")
    if args.space == "features" and not args.annotator:
        raise AuditInputError("--annotator: required for --space features")

    from audit.data.store import PreparedDataset
    from audit.gans import SamplerContext, make_sampler
    from audit.gans.planted import SOURCE_SPLIT, distinct_rows
    from audit.runtime import configure_workers, resolve_device

    workers = configure_workers(args.threads, args.seed)
    recipe["device"] = device = resolve_device(args.device)
    data = PreparedDataset.open(args.data)
    calibration = load_json(args.calibration)
    if "quantile" not in calibration or "thresholds" not in calibration.get("rule", {}):
        raise AuditInputError(f"{args.calibration}: not a support_calibration output (no rule.thresholds)")
    model = None
    if args.space == "features":
        from audit.models.classifier import load_classifier

        model, _ = load_classifier(args.annotator, device=device)
    pool = int(distinct_rows(data, data.rows(SOURCE_SPLIT)).size)
    ks = sorted({min(k, pool) for k in args.k} | {pool})
    if args.n < pool:
        raise AuditInputError(f"discriminators.demo_n: {args.n} samples cannot realise a memoriser of the whole pool "
                              f"({pool} images)")
    rungs, real = parse_ladder(args.ladder, data.images.shape[1:]), real_splits(data)
    cells, birthday = [], {}
    for k in ks:
        spec = {"type": "memoriser", "k": k, "noise_std": args.noise_std}
        images = make_sampler(f"memoriser_k{k}", spec, SamplerContext(data=data)).sample(
            args.n, run_seed(args.seed, ROLE_DEMO, k)).images
        records, _ = audit_gan(real, images, rungs, recipe, args, workers, label=f"k = {k}: ")
        cells += [{"k": k, **{key: r.get(key) for key in ("label", "parameters", "accuracy", "p_value", "p_holm",
                                                           "js_bound", "reason")}} for r in records]
        if model is not None:
            from audit.models.embedding import embed

            vectors = embed(model, images, device=device)
        else:
            vectors = images
        birthday[k] = birthday_support(vectors, calibration, args.repeats, args.bootstrap, args.alpha, args.seed, device)
        print(f"k = {k}: birthday {birthday[k]['support_text']} (p = {birthday[k]['birthday_p_value']})", flush=True)
    finding = demo_finding(cells, birthday, args.alpha)
    save_json(args.out_json, {"k": ks, "pool_size": pool, "n": args.n, "noise_std": args.noise_std, "space": args.space,
                              "alpha": args.alpha, "seeds": args.seeds, "seed": args.seed, "cells": cells,
                              "birthday": [{"k": k, **b} for k, b in birthday.items()], "finding": finding})
    import pandas as pd

    table = pd.DataFrame([{**c, **birthday[c["k"]]} for c in cells])
    save_table(args.out_csv, table)
    from audit.plots.discriminators import plot_demo

    plot_demo(table, args.alpha, args.out_png)
    print(table.to_string(index=False))
    print("\n".join(finding) or "no rung failed where the birthday test succeeded")


if __name__ == "__main__":
    run_cli(main)
