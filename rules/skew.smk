rule label:
    input:
        annotator=rules.annotator.output.model,
        samples=rules.sample.output.samples,
        planted=rules.sample.output.planted,
    output:
        f"{OUT}/labels/{{gan}}.csv",
    params:
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/label/{{gan}}.log",
    benchmark:
        f"{BENCH}/label/{{gan}}.tsv"
    shell:
        "python -m audit.label --annotator {input.annotator} --samples {OUT}/samples/{wildcards.gan} "
        "--out {output} --device {params.device} --threads {threads} > {log} 2>&1"


rule skew:
    input:
        labels=rules.label.output,
        test=rules.annotator.output.test,
        truth=rules.sample.output.truth,
        data=rules.prepare.output,
    output:
        json=f"{OUT}/skew/{{gan}}.json",
        table=f"{OUT}/skew/{{gan}}_classes.csv",
        plot=report(f"{OUT}/skew/{{gan}}.png", caption="../report/captions/skew.rst",
                    category="Class skew", subcategory="{gan}"),
    params:
        threshold=config["label"]["confidence_threshold"],
        bootstrap=config["skew"]["bootstrap"],
        seed=config["seed"],
    log:
        f"{LOGS}/skew/{{gan}}.log",
    benchmark:
        f"{BENCH}/skew/{{gan}}.tsv"
    shell:
        "python -m audit.skew --name {wildcards.gan} --labels {input.labels} --annotator-test {input.test} "
        "--data {OUT}/data --truth {input.truth} --threshold {params.threshold} --bootstrap {params.bootstrap} "
        "--seed {params.seed} --out-json {output.json} --out-csv {output.table} --out-png {output.plot} "
        "> {log} 2>&1"
