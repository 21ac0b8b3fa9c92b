rule spectrum:
    input:
        data=rules.prepare.output,
        samples=rules.sample.output.samples,
    output:
        json=f"{OUT}/spectrum/{{gan}}.json",
        table=f"{OUT}/spectrum/{{gan}}.csv",
        plot=report(f"{OUT}/spectrum/{{gan}}.png", caption="../report/captions/spectrum.rst",
                    category="Covariance spectra", subcategory="{gan}"),
    params:
        # the stage reads the prepared dataset as one folder: the folder of the declared files
        data=lambda w, input: prepared_dir(input.data),
        split="test",
        # the test's null stand-ins: real train images (independent of the test split)
        null_split="train",
        label=lambda w: w.gan,
        max_samples=config["spectrum"]["max_samples"],
        threshold=config["spectrum"]["dropped_ratio"],
        alpha=config["spectrum"]["alpha"],
        null_draws=config["spectrum"]["null_draws"],
        test_samples=config["spectrum"]["test_samples"],
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    resources:
        mem_mb=8000,
    log:
        f"{LOGS}/spectrum/{{gan}}.log",
    benchmark:
        f"{BENCH}/spectrum/{{gan}}.tsv"
    shell:
        "python -m audit.spectrum --real {params.data} --real-split {params.split} --null-real {params.data} "
        "--null-split {params.null_split} --gan {input.samples} --label {params.label} "
        "--max-samples {params.max_samples} --threshold {params.threshold} --alpha {params.alpha} "
        "--null-draws {params.null_draws} --test-samples {params.test_samples} "
        "--seed {params.seed} --device {params.device} --threads {threads} --out-json {output.json} "
        "--out-csv {output.table} --out-png {output.plot} > {log} 2>&1"
