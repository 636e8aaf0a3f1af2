rule train:
    input:
        data=get_dataset(),
        model=get_model_code,
        code=code("train.py"),
    output:
        checkpoints=directory(f"{RUN_DIR}/checkpoints"),
        history=f"{RUN_DIR}/history.csv",
        outcome=f"{RUN_DIR}/outcome.json",
        # A link to the checkpoint outcome.json names, the one the landscape jobs measure: an
        # input of theirs, so a checkpoint replaced inside the folder re-runs them (Snakemake
        # judges a linked input by its target's time stamp; the folder by its own).
        measured=f"{RUN_DIR}/measured.pt",
    log:
        f"results/logs/train/{RUN_LOG}.log",
    benchmark:
        f"results/benchmarks/train/{RUN_LOG}.tsv"
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        run=get_run_id,
        settings=get_train_settings,
    script:
        "../scripts/train.py"
