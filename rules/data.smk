from audit.data import COMPOSED_DATASETS


rule prepare:
    output:
        images=f"{OUT}/data/images.npy",
        index=f"{OUT}/data/index.csv",
        meta=f"{OUT}/data/meta.json",
        # a composed dataset (stacked_mnist) writes its prepared base beside its files (audit/data/store.py)
        **({"base": directory(f"{OUT}/data/base")} if DATASET in COMPOSED_DATASETS else {}),
    params:
        dataset=config["dataset"]["name"],
        # the stage writes the prepared dataset as one folder: the folder of the declared files
        out=lambda w, output: prepared_dir(output),
        splits=" ".join(f"{k}={v}" for k, v in config["dataset"]["splits"].items()),
        options=" ".join(f"'{k}={json.dumps(v)}'" for k, v in config["dataset"]["options"].items()),
        seed=config["seed"],
    log:
        f"{LOGS}/prepare.log",
    benchmark:
        f"{BENCH}/prepare.tsv"
    shell:
        "python -m audit.prepare --dataset {params.dataset} --out {params.out} --seed {params.seed} "
        "--splits {params.splits} --option {params.options} > {log} 2>&1"
