rule prepare_dataset:
    input:
        sources=get_source_files(),
        code=code("prepare_dataset.py"),
    output:
        "results/data/{dataset}.npz",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../envs/unetscape.yaml"
    params:
        data=config["data"],
    script:
        "../scripts/prepare_dataset.py"
