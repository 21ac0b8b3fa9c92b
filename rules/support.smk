# Support size and memorisation (issue 13; Arora & Zhang 2017): the annotator's embeddings of
# every image set (features), the birthday test's duplicate rule calibrated on real held-out
# images (support_calibration, once), each GAN's draws (support_pairs), the estimate and its
# verdict (support), the nearest training image of every sample (memorisation); and the optional
# target `support_vs_discriminator`. Method: audit/metrics/SUPPORT.md.

SUPPORT = config["support"]
#: the real splits embedded once per dataset: features/real_<split>.npy
FEATURE_SPLITS = ["train", "pool", "test"]


def support_real(files):
    """The support stage's real test images: the embeddings file, or the prepared dataset
    directory (pixel space) with its split flag."""
    if SUPPORT["space"] == "features":
        return f"--real {files.real}"
    return f"--real {prepared_dir(files.real)} --real-split test"


rule features_real:
    input:
        model=rules.annotator.output.model,
        data=rules.prepare.output,
    output:
        **{split: f"{OUT}/features/real_{split}.npy" for split in FEATURE_SPLITS},
    params:
        data=lambda w, input: prepared_dir(input.data),
        splits=" ".join(FEATURE_SPLITS),
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/features_real.log",
    benchmark:
        f"{BENCH}/features_real.tsv"
    shell:
        "python -m audit.features --model {input.model} --data {params.data} --splits {params.splits} "
        "--out {output} --device {params.device} --threads {threads} > {log} 2>&1"


rule features:
    input:
        model=rules.annotator.output.model,
        samples=rules.sample.output.samples,
    output:
        f"{OUT}/features/{{gan}}.npy",
    params:
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/features/{{gan}}.log",
    benchmark:
        f"{BENCH}/features/{{gan}}.tsv"
    shell:
        "python -m audit.features --model {input.model} --images {input.samples} --out {output} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


rule support_calibration:
    input:
        real=rules.features_real.output.test if SUPPORT["space"] == "features" else rules.prepare.output,
    output:
        json=f"{OUT}/support/real_calibration.json",
    params:
        real=lambda w, input: support_real(input),
        grid=" ".join(str(s) for s in SUPPORT["grid"]),
        quantile=SUPPORT["quantile"],
        halvings=SUPPORT["validation_halvings"],
        draws=SUPPORT["validation_draws"],
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/support_calibration.log",
    benchmark:
        f"{BENCH}/support_calibration.tsv"
    shell:
        "python -m audit.support_calibration {params.real} --grid {params.grid} --quantile {params.quantile} "
        "--halvings {params.halvings} --draws {params.draws} --seed {params.seed} --device {params.device} "
        "--threads {threads} --out {output.json} > {log} 2>&1"


rule support_pairs:
    input:
        calibration=rules.support_calibration.output.json,
        vectors=rules.features.output[0] if SUPPORT["space"] == "features" else rules.sample.output.samples,
        samples=rules.sample.output.samples,
    output:
        search=f"{OUT}/support/{{gan}}/search.json",
        # update(): a rerun reads the previous file and carries the human confirmations over
        pairs=update(f"{OUT}/support/{{gan}}/pairs.csv"),
    params:
        repeats=SUPPORT["repeats"],
        pairs=SUPPORT["pairs"],
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/support_pairs/{{gan}}.log",
    benchmark:
        f"{BENCH}/support_pairs/{{gan}}.tsv"
    shell:
        "python -m audit.support_pairs --calibration {input.calibration} --vectors {input.vectors} "
        "--samples {input.samples} --repeats {params.repeats} --pairs-per-draw {params.pairs} "
        "--seed {params.seed} --device {params.device} --threads {threads} --search {output.search} "
        "--pairs {output.pairs} > {log} 2>&1"


rule memorisation:
    input:
        data=rules.prepare.output,
        samples=rules.sample.output.samples,
        features=rules.features.output[0],
        train=rules.features_real.output.train,
        test=rules.features_real.output.test,
    output:
        json=f"{OUT}/memorisation/{{gan}}.json",
        nearest=f"{OUT}/memorisation/{{gan}}_nearest.csv",
        plot=report(f"{OUT}/memorisation/{{gan}}.png", caption="../report/captions/memorisation.rst",
                    category="Support and memorisation", subcategory="{gan}"),
    params:
        data=lambda w, input: prepared_dir(input.data),
        quantile=config["memorisation"]["quantile"],
        alpha=config["memorisation"]["alpha"],
        shown=config["memorisation"]["shown"],
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/memorisation/{{gan}}.log",
    benchmark:
        f"{BENCH}/memorisation/{{gan}}.tsv"
    shell:
        "python -m audit.memorisation --data {params.data} --samples {input.samples} "
        "--gan-features {input.features} --train-features {input.train} --test-features {input.test} "
        "--quantile {params.quantile} --alpha {params.alpha} --shown {params.shown} --seed {params.seed} "
        "--device {params.device} --threads {threads} --out-json {output.json} --nearest {output.nearest} "
        "--plot {output.plot} > {log} 2>&1"


# pairs.csv is an input here and of nothing upstream: a human's edit of its `confirmed` column
# reruns this job (and the report) only.
rule support:
    input:
        search=rules.support_pairs.output.search,
        pairs=rules.support_pairs.output.pairs,
        calibration=rules.support_calibration.output.json,
        samples=rules.sample.output.samples,
        data=rules.prepare.output,
        nearest=rules.memorisation.output.nearest,
    output:
        json=f"{OUT}/support/{{gan}}/support.json",
        table=f"{OUT}/support/{{gan}}/support.csv",
        curve=report(f"{OUT}/support/{{gan}}/curve.png", caption="../report/captions/support.rst",
                     category="Support and memorisation", subcategory="{gan}"),
        sheet=report(f"{OUT}/support/{{gan}}/sheet.png", caption="../report/captions/support_sheet.rst",
                     category="Support and memorisation", subcategory="{gan}"),
    params:
        data=lambda w, input: prepared_dir(input.data),
        space=SUPPORT["space"],
        alpha=SUPPORT["alpha"],
        bootstrap=SUPPORT["bootstrap"],
        seed=config["seed"],
    log:
        f"{LOGS}/support/{{gan}}.log",
    benchmark:
        f"{BENCH}/support/{{gan}}.tsv"
    shell:
        "python -m audit.support --search {input.search} --pairs {input.pairs} --calibration {input.calibration} "
        "--samples {input.samples} --data {params.data} --nearest {input.nearest} --space {params.space} "
        "--alpha {params.alpha} --bootstrap {params.bootstrap} --seed {params.seed} --out-json {output.json} "
        "--table {output.table} --curve {output.curve} --sheet {output.sheet} > {log} 2>&1"


# --- optional: support against discriminator size (Arora & Zhang 2017, section 4) -------------
# `snakemake support_vs_discriminator`: the GAN entry support.discriminator_gan retrained with its
# discriminator's width times each of support.discriminator_multipliers, sampled, embedded and
# searched like any GAN; one table and plot of support against discriminator parameters. Not in
# `all`: four trainings exceed the default run's budget (README "Support size and discriminator size").


def disc_variants():
    """variant name ('x0.5') -> the GAN spec with its discriminator width scaled."""
    base = config["gans"].get(SUPPORT["discriminator_gan"])
    if base is None or base["type"] not in TRAINED_TYPES:
        return {}
    width = base.get("disc_width", base["width"])
    return {f"x{m:g}": {**base, "disc_width": max(2, round(m * width))} for m in SUPPORT["discriminator_multipliers"]}


DISC_VARIANTS = disc_variants()
DISC_OUT = f"{OUT}/support_vs_discriminator"


use rule train_gan as train_gan_disc with:
    output:
        generator=f"{DISC_OUT}/{{variant}}/generator.pt",
        losses=f"{DISC_OUT}/{{variant}}/losses.csv",
        plot=f"{DISC_OUT}/{{variant}}/losses.png",
        interpolation=f"{DISC_OUT}/{{variant}}/interpolation.png",
    wildcard_constraints:
        variant=one_of(DISC_VARIANTS),
    params:
        data=lambda w, input: prepared_dir(input.data),
        checkpoint=lambda w, output: os.path.join(os.path.dirname(output.generator), "checkpoint.pt"),
        options=lambda w: cli_options({k: v for k, v in DISC_VARIANTS[w.variant].items() if k != "type"}),
        loss=lambda w: DISC_VARIANTS[w.variant]["type"],
        seed=config["seed"],
        device=config["device"],
    log:
        f"{LOGS}/support_vs_discriminator/{{variant}}_train.log",
    benchmark:
        f"{BENCH}/support_vs_discriminator/{{variant}}_train.tsv"


use rule sample as sample_disc with:
    input:
        data=rules.prepare.output,
        generator=rules.train_gan_disc.output.generator,
    output:
        samples=f"{DISC_OUT}/{{variant}}/samples.npy",
        planted=f"{DISC_OUT}/{{variant}}/planted_labels.npy",
        truth=f"{DISC_OUT}/{{variant}}/truth.json",
        preview=f"{DISC_OUT}/{{variant}}/preview.png",
    wildcard_constraints:
        variant=one_of(DISC_VARIANTS),
    params:
        name=lambda w: w.variant,
        spec=lambda w: shlex.quote(json.dumps(DISC_VARIANTS[w.variant])),
        data=lambda w, input: prepared_dir(input.data),
        generator=lambda w, input: f"--generator {input.generator}",
        interpolation="",
        n=config["samples"]["n"],
        seed=config["seed"],
        device=config["device"],
    log:
        f"{LOGS}/support_vs_discriminator/{{variant}}_sample.log",
    benchmark:
        f"{BENCH}/support_vs_discriminator/{{variant}}_sample.tsv"


use rule features as features_disc with:
    input:
        model=rules.annotator.output.model,
        samples=rules.sample_disc.output.samples,
    output:
        f"{DISC_OUT}/{{variant}}/features.npy",
    wildcard_constraints:
        variant=one_of(DISC_VARIANTS),
    log:
        f"{LOGS}/support_vs_discriminator/{{variant}}_features.log",
    benchmark:
        f"{BENCH}/support_vs_discriminator/{{variant}}_features.tsv"


use rule support_pairs as support_pairs_disc with:
    input:
        calibration=rules.support_calibration.output.json,
        vectors=rules.features_disc.output[0] if SUPPORT["space"] == "features" else rules.sample_disc.output.samples,
        samples=rules.sample_disc.output.samples,
    output:
        search=f"{DISC_OUT}/{{variant}}/search.json",
        pairs=f"{DISC_OUT}/{{variant}}/pairs.csv",
    wildcard_constraints:
        variant=one_of(DISC_VARIANTS),
    log:
        f"{LOGS}/support_vs_discriminator/{{variant}}_pairs.log",
    benchmark:
        f"{BENCH}/support_vs_discriminator/{{variant}}_pairs.tsv"


rule support_vs_discriminator:
    input:
        searches=expand(rules.support_pairs_disc.output.search, variant=DISC_VARIANTS),
        generators=expand(rules.train_gan_disc.output.generator, variant=DISC_VARIANTS),
    output:
        table=f"{DISC_OUT}/support.csv",
        plot=report(f"{DISC_OUT}/support.png", caption="../report/captions/support_vs_discriminator.rst",
                    category="Support and memorisation"),
    params:
        names=list(DISC_VARIANTS),
        alpha=SUPPORT["alpha"],
        bootstrap=SUPPORT["bootstrap"],
        seed=config["seed"],
    log:
        f"{LOGS}/support_vs_discriminator/summary.log",
    benchmark:
        f"{BENCH}/support_vs_discriminator/summary.tsv"
    shell:
        "python -m audit.support_vs_discriminator --names {params.names} --searches {input.searches} "
        "--generators {input.generators} --alpha {params.alpha} --bootstrap {params.bootstrap} "
        "--seed {params.seed} --out-csv {output.table} --out-png {output.plot} > {log} 2>&1"
