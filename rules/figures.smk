rule training_figure:
    input:
        histories=get_study_histories,
        code=code("figures"),
    output:
        png=report(
            "results/figures/{study}.png",
            category="Training",
            subcategory="{study}",
            caption="../report/training_figure.rst",
            labels={"study": "{study}", "figure": "training loss"},
        ),
        pdf="results/figures/{study}.pdf",
    log:
        "results/logs/training_figure/{study}.log",
    localrule: True
    params:
        study=get_study_params,
    script:
        "../scripts/training_figure.py"
