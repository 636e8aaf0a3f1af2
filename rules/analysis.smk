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


rule landscape_metrics:
    input:
        surfaces=get_study_surfaces,
        lines=get_study_lines,
        hessians=get_study_hessians,
        histories=get_study_histories,
        code=code("metrics"),
    output:
        runs=report(
            "results/tables/landscape_{study}.csv",
            category="Tables",
            subcategory="{study}",
            caption="../report/landscape_table.rst",
            labels={"study": "{study}", "table": "runs"},
        ),
        conditions=report(
            "results/tables/conditions_{study}.csv",
            category="Tables",
            subcategory="{study}",
            caption="../report/conditions_table.rst",
            labels={"study": "{study}", "table": "conditions"},
        ),
    log:
        "results/logs/landscape_metrics/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
        metrics=config["metrics"],
    script:
        "../scripts/landscape_metrics.py"
