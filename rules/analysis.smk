rule training_table:
    input:
        histories=get_study_histories,
        outcomes=get_study_outcomes,
        code=code("training_table.py"),
    output:
        "results/tables/training_{study}.csv",
    log:
        "results/logs/training_table/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
    script:
        "../scripts/training_table.py"


rule landscape_metrics:
    input:
        unpack(get_study_measures),
        code=code("landscape_metrics.py"),
    output:
        runs=report(
            "results/tables/landscape_{study}.csv",
            category="Tables",
            subcategory="{study}",
            caption="../report/landscape_table.rst",
            labels={"study": "{study}", "table": "runs (CSV)"},
        ),
        conditions=report(
            "results/tables/conditions_{study}.csv",
            category="Tables",
            subcategory="{study}",
            caption="../report/conditions_table.rst",
            labels={"study": "{study}", "table": "conditions (CSV)"},
        ),
        directions=report(
            "results/tables/directions_{study}.csv",
            category="Tables",
            subcategory="{study}",
            caption="../report/directions_table.rst",
            labels={"study": "{study}", "table": "direction and seed variance (CSV)"},
        ),
    log:
        "results/logs/landscape_metrics/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
        metrics=config["metrics"],
        topology=config["metrics"]["topology"],
        tolerance=config["training"]["plateau"]["tolerance"],
        curve_pairs=get_study_curve_pairs,
    script:
        "../scripts/landscape_metrics.py"


rule findings:
    input:
        unpack(get_findings_tables),
        code=code("findings.py"),
    output:
        table=report(
            "results/tables/findings.csv",
            category="Findings",
            caption="../report/findings_table.rst",
            labels={"table": "every comparison (CSV)"},
        ),
        claims=report(
            "results/tables/claims.csv",
            category="Findings",
            caption="../report/claims_table.rst",
            labels={"table": "claims (CSV)"},
        ),
        # the same verdicts as the pages "claims" and "every comparison" show, as text
        summary="results/report/findings.rst",
    log:
        "results/logs/findings.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        metrics=config["metrics"],
        claims=config["claims"],
    script:
        "../scripts/findings.py"


rule generalisation:
    input:
        tables=get_generalisation_tables,
        code=code("generalisation.py"),
    output:
        table=report(
            "results/tables/generalisation.csv",
            category="Generalisation",
            caption="../report/generalisation_table.rst",
            labels={"table": "rank correlations (CSV)"},
        ),
        # the same sentences as the page "ranking (on the page)" shows, as text
        summary="results/report/generalisation.rst",
        ranking=report(
            "results/figures/generalisation.png",
            category="Generalisation",
            caption="../report/generalisation_figure.rst",
            labels={"figure": "ranking"},
        ),
        ranking_pdf="results/figures/generalisation.pdf",
        measures=report(
            directory("results/figures/generalisation"),
            patterns=["{measure}.png"],
            category="Generalisation",
            caption="../report/generalisation_measure.rst",
            labels={"figure": "{measure}"},
        ),
    log:
        "results/logs/generalisation.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        metrics=config["metrics"],
        study=GENERALISATION_STUDY,
    script:
        "../scripts/generalisation.py"
