rule training_table:
    input:
        histories=get_study_histories,
        code=code("tables"),
    output:
        "results/tables/training_{study}.csv",
    log:
        "results/logs/training_table/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        runs=get_study_runs,
    script:
        "../scripts/training_table.py"
