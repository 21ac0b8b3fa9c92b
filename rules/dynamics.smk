# GAN dynamics on a two-Gaussian mixture (Li, Madry, Peebles, Schmidt 2017): the paper's Figures 1
# and 2, and a sweep of both dynamics over seeded initialisations and step sizes. Independent of
# the dataset, so its outputs live under results/dynamics/.

DYNAMICS_CAPTION = "../report/captions/dynamics.rst"


rule gan_dynamics:
    output:
        figure1=report(f"{RESULTS}/dynamics/figure1.png", caption=DYNAMICS_CAPTION, category="Dynamics"),
        figure2=report(f"{RESULTS}/dynamics/figure2.png", caption=DYNAMICS_CAPTION, category="Dynamics"),
        sweep=f"{RESULTS}/dynamics/sweep.csv",
        heatmap=report(f"{RESULTS}/dynamics/sweep_heatmap.png", caption=DYNAMICS_CAPTION, category="Dynamics"),
        summary=f"{RESULTS}/dynamics/summary.json",
    params:
        seed=config["dynamics"]["seed"],
        runs=config["dynamics"]["runs"],
        steps=config["dynamics"]["steps"],
        eta_g=" ".join(str(v) for v in config["dynamics"]["eta_g"]),
        eta_d=" ".join(str(v) for v in config["dynamics"]["eta_d"]),
        true_means=" ".join(str(v) for v in config["dynamics"]["true_means"]),
        gen_range=config["dynamics"]["gen_range"],
        disc_range=config["dynamics"]["disc_range"],
    threads: 2
    log:
        f"{LOGS}/gan_dynamics.log",
    benchmark:
        f"{BENCH}/gan_dynamics.tsv"
    shell:
        "python -m audit.gan_dynamics --seed {params.seed} --runs {params.runs} --steps {params.steps} "
        "--eta-g {params.eta_g} --eta-d {params.eta_d} --true-means {params.true_means} "
        "--gen-range {params.gen_range} --disc-range {params.disc_range} --threads {threads} "
        "--figure1 {output.figure1} --figure2 {output.figure2} --sweep {output.sweep} "
        "--heatmap {output.heatmap} --summary {output.summary} > {log} 2>&1"
