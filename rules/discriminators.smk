# Can a finite discriminator tell? (issue 15; Arora, Ge, Liang, Ma & Zhang 2017; Lopez-Paz & Oquab
# 2017). Every GAN meets a ladder of fresh discriminators of increasing capacity (rule
# discriminators: held-out accuracy, exact binomial test, JS lower bound, one Holm-combined
# verdict); the optional target `discriminator_demo` runs memorisers of k pool images against the
# same ladder beside the birthday test's support estimate. Method: audit/metrics/TWO_SAMPLE.md.

DISCRIMINATORS = config["discriminators"]


def discriminator_ladder():
    """The ladder as the stage's JSON: a ``role: annotator`` entry takes the annotator's
    architecture (config annotator.arch), whatever its ``arch`` says."""
    ladder = [dict(entry) for entry in DISCRIMINATORS["ladder"]]
    for entry in ladder:
        if entry.get("role") == "annotator":
            entry["arch"] = config["annotator"]["arch"]
    return shlex.quote(json.dumps(ladder))


def ladder_options():
    """The options every ladder run takes (audit.discriminators.add_ladder_options)."""
    return (f"--ladder {discriminator_ladder()} --steps {DISCRIMINATORS['steps']} "
            f"--batch-size {DISCRIMINATORS['batch_size']} --lr {DISCRIMINATORS['lr']} "
            f"--linear-lr {DISCRIMINATORS['linear_lr']} --weight-decay {DISCRIMINATORS['weight_decay']} "
            f"--seeds {DISCRIMINATORS['seeds']} --max-per-class {DISCRIMINATORS['max_per_class']} "
            f"--alpha {DISCRIMINATORS['alpha']} --bootstrap {DISCRIMINATORS['bootstrap']}")


rule discriminators:
    input:
        data=rules.prepare.output,
        samples=rules.sample.output.samples,
    output:
        json=f"{OUT}/discriminators/{{gan}}.json",
        table=f"{OUT}/discriminators/{{gan}}.csv",
        plot=report(f"{OUT}/discriminators/{{gan}}.png", caption="../report/captions/discriminators.rst",
                    category="Finite discriminators", subcategory="{gan}"),
    params:
        data=lambda w, input: prepared_dir(input.data),
        options=ladder_options(),
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/discriminators/{{gan}}.log",
    benchmark:
        f"{BENCH}/discriminators/{{gan}}.tsv"
    shell:
        "python -m audit.discriminators --name {wildcards.gan} --data {params.data} --samples {input.samples} "
        "{params.options} --seed {params.seed} --threads {threads} --device {params.device} "
        "--out-json {output.json} --out-csv {output.table} --out-png {output.plot} > {log} 2>&1"


# --- optional: Arora's demonstration -----------------------------------------------------------
# `snakemake discriminator_demo`: memorisers of k pool images (discriminators.demo_k plus the
# whole pool) against the ladder, beside the birthday test's support estimate of each; a heat map
# of held-out accuracy by k and capacity. Not in `all` (README "Finite discriminators").


rule discriminator_demo:
    input:
        data=rules.prepare.output,
        calibration=rules.support_calibration.output.json,
        annotator=rules.annotator.output.model,
    output:
        json=f"{OUT}/discriminators/demo.json",
        table=f"{OUT}/discriminators/demo.csv",
        plot=f"{OUT}/discriminators/demo.png",
    params:
        data=lambda w, input: prepared_dir(input.data),
        options=ladder_options(),
        space=config["support"]["space"],
        k=" ".join(str(k) for k in DISCRIMINATORS["demo_k"]),
        noise=DISCRIMINATORS["demo_noise_std"],
        n=DISCRIMINATORS["demo_n"],
        repeats=config["support"]["repeats"],
        seed=config["seed"],
        device=config["device"],
    threads: HEAVY_THREADS
    log:
        f"{LOGS}/discriminators/demo.log",
    benchmark:
        f"{BENCH}/discriminators/demo.tsv"
    shell:
        "python -m audit.discriminators demo --data {params.data} --calibration {input.calibration} "
        "--annotator {input.annotator} --space {params.space} --k {params.k} --noise-std {params.noise} "
        "--n {params.n} --repeats {params.repeats} {params.options} --seed {params.seed} --threads {threads} "
        "--device {params.device} --out-json {output.json} --out-csv {output.table} --out-png {output.plot} "
        "> {log} 2>&1"
