# Diversity by classification (issue 5; Santurkar, Schmidt & Madry 2017): classifiers trained on
# n real images (the real curve, once per dataset) against the same classifiers trained on each
# GAN's confident, annotator-labelled samples; all tested on the real test split.

#: "annotator" (the default): the deep classifier has the annotator's architecture
DIVERSITY_ARCH = diversity_architecture(config)


rule real_curve:
    input:
        data=rules.prepare.output,
    output:
        table=f"{OUT}/diversity/real_curve.csv",
        summary=f"{OUT}/diversity/real_curve.json",
    params:
        # the prepared dataset is one folder: the folder of its declared files (common.smk)
        data=lambda w, input: prepared_dir(input.data),
        grid=" ".join(str(n) for n in config["diversity"]["grid"]),
        seeds=config["diversity"]["seeds"],
        arch=DIVERSITY_ARCH,
        steps=config["diversity"]["steps"],
        batch_size=config["diversity"]["batch_size"],
        lr=config["diversity"]["lr"],
        # augmentation is a property of the images: the annotator's setting
        flip="--flip" if CLASSIFIER_FLIP else "--no-flip",
        shift=config["annotator"]["shift"],
        # model selection: the same rule for the GAN-trained classifiers (the recipe travels in the CSV)
        holdout=config["diversity"]["holdout"],
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/diversity/real_curve.log",
    benchmark:
        f"{BENCH}/diversity/real_curve.tsv"
    shell:
        "python -m audit.real_curve --data {params.data} --out-csv {output.table} --out-json {output.summary} "
        "--grid {params.grid} --seeds {params.seeds} --arch {params.arch} --steps {params.steps} "
        "--batch-size {params.batch_size} --lr {params.lr} {params.flip} --shift {params.shift} "
        "--holdout {params.holdout} --seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"


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
        name=lambda w: w.gan,
        data=lambda w, input: prepared_dir(input.data),
        threshold=config["label"]["confidence_threshold"],
        gan_grid=" ".join(str(n) for n in config["diversity"]["gan_grid"]),
        bootstrap=config["diversity"]["bootstrap"],
        alpha=config["diversity"]["alpha"],
        holdout=config["diversity"]["holdout"],  # for the caption: the model-selection rule of the real curve's recipe
        seeds=config["diversity"]["seeds"],  # for the caption: the GAN stage reuses the real curve's seeds
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/diversity/{{gan}}.log",
    benchmark:
        f"{BENCH}/diversity/{{gan}}.tsv"
    shell:
        "python -m audit.diversity --name {params.name} --data {params.data} --samples {input.samples} "
        "--truth {input.truth} --labels {input.labels} --real-curve {input.real} --threshold {params.threshold} "
        "--gan-grid {params.gan_grid} --bootstrap {params.bootstrap} --alpha {params.alpha} "
        "--seed {params.seed} --device {params.device} --threads {threads} --out-json {output.json} "
        "--out-csv {output.table} --out-png {output.plot} > {log} 2>&1"
