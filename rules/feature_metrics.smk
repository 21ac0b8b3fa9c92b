# The metrics people already use (issue 14): FD, KID, inception-style score, precision / recall /
# density / coverage and Vendi, per GAN, in the annotator's feature space (the features stage),
# each beside the perfect-generator value at the same sample size: the real pool split's features
# against the same real test split (audit/metrics/FEATURE_METRICS.md, "Same N").


rule feature_metrics:
    input:
        real=rules.features_real.output.test,
        reference=rules.features_real.output.pool,
        features=rules.features.output[0],
        labels=rules.label.output,
        test=rules.annotator.output.test,
    output:
        json=f"{OUT}/feature_metrics/{{gan}}.json",
        plot=report(f"{OUT}/feature_metrics/{{gan}}.png", caption="../report/captions/feature_metrics.rst",
                    category="Feature metrics", subcategory="{gan}"),
    params:
        name=lambda w: w.gan,
        options=cli_options({key: config["feature_metrics"][key] for key in
                             ("k", "kid_subsets", "kid_subset_size", "bootstrap", "permutations", "alpha")}),
        seed=config["seed"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/feature_metrics/{{gan}}.log",
    benchmark:
        f"{BENCH}/feature_metrics/{{gan}}.tsv"
    shell:
        "python -m audit.feature_metrics --name {params.name} --real-features {input.real} "
        "--real-reference {input.reference} --features {input.features} --labels {input.labels} "
        "--annotator-test {input.test} {params.options} --seed {params.seed} --threads {threads} "
        "--out-json {output.json} --out-png {output.plot} > {log} 2>&1"
