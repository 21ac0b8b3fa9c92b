# Diversity by classification (issue 5; Santurkar, Schmidt & Madry 2017): classifiers trained on
# n real images (the real curve, once per dataset) against the same classifiers trained on each
# GAN's confident, annotator-labelled samples; all tested on the real test split.

DIVERSITY = config.get("diversity", {})
#: "annotator" (the default): the deep classifier has the annotator's architecture
DIVERSITY_ARCH = config["annotator"]["arch"] if DIVERSITY.get("arch", "annotator") == "annotator" else DIVERSITY["arch"]


rule real_curve:
    input:
        rules.prepare.output,
    output:
        table=f"{OUT}/diversity/real_curve.csv",
        summary=f"{OUT}/diversity/real_curve.json",
    params:
        grid=" ".join(str(n) for n in DIVERSITY.get("grid", [20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000])),
        seeds=DIVERSITY.get("seeds", 3),
        arch=DIVERSITY_ARCH,
        steps=DIVERSITY.get("steps", 300),
        batch_size=DIVERSITY.get("batch_size", 32),
        lr=DIVERSITY.get("lr", 0.002),
        # augmentation is a property of the images: the annotator's setting
        flip="--flip" if ANNOTATOR_FLIP else "",
        shift=config["annotator"].get("shift", 1),
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/diversity/real_curve.log",
    benchmark:
        f"{BENCH}/diversity/real_curve.tsv"
    shell:
        "python -m audit.diversity real --data {OUT}/data --out-csv {output.table} --out-json {output.summary} "
        "--grid {params.grid} --seeds {params.seeds} --arch {params.arch} --steps {params.steps} "
        "--batch-size {params.batch_size} --lr {params.lr} {params.flip} --shift {params.shift} "
        "--seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"


rule diversity:
    input:
        data=rules.prepare.output,
        samples=rules.sample.output.samples,
        truth=rules.sample.output.truth,
        labels=rules.label.output,
        real=rules.real_curve.output.table,
    output:
        json=f"{OUT}/diversity/{{gan}}.json",
        table=f"{OUT}/diversity/{{gan}}.csv",
        plot=report(f"{OUT}/diversity/{{gan}}.png", caption="../report/captions/diversity.rst",
                    category="Diversity", subcategory="{gan}"),
    params:
        threshold=config["label"]["confidence_threshold"],
        gan_grid=" ".join(str(n) for n in DIVERSITY.get("gan_grid", [100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000])),
        holdout=DIVERSITY.get("holdout", 0.1),
        bootstrap=DIVERSITY.get("bootstrap", 1000),
        seeds=DIVERSITY.get("seeds", 3),  # for the caption: the GAN stage reuses the real curve's seeds
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/diversity/{{gan}}.log",
    benchmark:
        f"{BENCH}/diversity/{{gan}}.tsv"
    shell:
        "python -m audit.diversity gan --name {wildcards.gan} --data {OUT}/data --samples {OUT}/samples/{wildcards.gan} "
        "--labels {input.labels} --real-curve {input.real} --threshold {params.threshold} "
        "--gan-grid {params.gan_grid} --holdout {params.holdout} --bootstrap {params.bootstrap} --seed {params.seed} "
        "--device {params.device} --threads {threads} --out-json {output.json} --out-csv {output.table} "
        "--out-png {output.plot} > {log} 2>&1"
