# A checkpoint rule: once a run is trained, the jobs that measure it take the checkpoint file
# its outcome.json names as an input of their own (see get_measured_checkpoint).
checkpoint train:
    input:
        data=get_dataset(),
        model=get_model_code,
        code=code("train.py"),
    output:
        checkpoints=directory(f"{RUN_DIR}/checkpoints"),
        history=f"{RUN_DIR}/history.csv",
        outcome=f"{RUN_DIR}/outcome.json",
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
