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
        "python -m audit.label --annotator {input.annotator} --samples {input.samples} "
        "--planted-labels {input.planted} --out {output} --device {params.device} --threads {threads} > {log} 2>&1"


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
        name=lambda w: w.gan,
        data=lambda w, input: prepared_dir(input.data),
        threshold=config["label"]["confidence_threshold"],
        bootstrap=config["skew"]["bootstrap"],
        alpha=config["skew"]["alpha"],
        null_draws=config["skew"]["null_draws"],
        seed=config["seed"],
    log:
        f"{LOGS}/skew/{{gan}}.log",
    benchmark:
        f"{BENCH}/skew/{{gan}}.tsv"
    shell:
        "python -m audit.skew --name {params.name} --labels {input.labels} --annotator-test {input.test} "
        "--data {params.data} --truth {input.truth} --threshold {params.threshold} --alpha {params.alpha} "
        "--null-draws {params.null_draws} --bootstrap {params.bootstrap} "
        "--seed {params.seed} --out-json {output.json} --out-csv {output.table} --out-png {output.plot} "
        "> {log} 2>&1"
