rule training_figure:
    input:
        histories=get_study_histories,
        outcomes=get_study_outcomes,
        code=code("training_figure.py"),
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
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
    script:
        "../scripts/training_figure.py"


rule run_figures:
    input:
        surface=f"{LANDSCAPE_DIR}/random/surface.h5",
        line=f"{LANDSCAPE_DIR}/random/line.h5",
        interpolation=f"{LANDSCAPE_DIR}/interpolation_init.h5",
        trajectory=f"{LANDSCAPE_DIR}/pca/surface.h5",
        eigen=f"{LANDSCAPE_DIR}/eigen/surface.h5",
        outcome=f"{RUN_DIR}/outcome.json",
        code=code("run_figures.py"),
    output:
        surface=report(
            f"results/figures/landscape/{RUN_LOG}/surface.png",
            category="Landscapes per run",
            subcategory="{arch} {optim} noise {noise}",
            caption="../report/run_surface.rst",
            labels={"run": RUN_LOG, "figure": "surface"},
        ),
        lines=report(
            f"results/figures/landscape/{RUN_LOG}/lines.png",
            category="Landscapes per run",
            subcategory="{arch} {optim} noise {noise}",
            caption="../report/run_lines.rst",
            labels={"run": RUN_LOG, "figure": "1-D"},
        ),
        trajectory=report(
            f"results/figures/landscape/{RUN_LOG}/trajectory.png",
            category="Landscapes per run",
            subcategory="{arch} {optim} noise {noise}",
            caption="../report/run_trajectory.rst",
            labels={"run": RUN_LOG, "figure": "trajectory"},
        ),
        sharpest=report(
            f"results/figures/landscape/{RUN_LOG}/sharpest.png",
            category="Landscapes per run",
            subcategory="{arch} {optim} noise {noise}",
            caption="../report/run_sharpest.rst",
            labels={"run": RUN_LOG, "figure": "random and sharpest view"},
        ),
        random_vts=f"{LANDSCAPE_DIR}/random/surface.vts",
        pca_vts=f"{LANDSCAPE_DIR}/pca/surface.vts",
        eigen_vts=f"{LANDSCAPE_DIR}/eigen/surface.vts",
    log:
        f"results/logs/run_figures/{RUN_LOG}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        run=get_run_id,
        levels=config["landscape"]["contour_levels"],
        log_scale=config["landscape"]["line"]["log_scale"],
        threshold=config["metrics"]["topology"]["threshold"],
    script:
        "../scripts/run_figures.py"


rule landscape_figure:
    input:
        surfaces=get_study_surfaces,
        code=code("landscape_figure.py"),
    output:
        png=report(
            "results/figures/{study}_landscape.png",
            category="Landscapes per study",
            subcategory="{study}",
            caption="../report/landscape_figure.rst",
            labels={"study": "{study}", "figure": "surfaces"},
        ),
        pdf="results/figures/{study}_landscape.pdf",
    log:
        "results/logs/landscape_figure/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
        levels=config["landscape"]["contour_levels"],
    script:
        "../scripts/landscape_figure.py"


rule interpolation_figure:
    input:
        unpack(get_study_interpolations),
        code=code("interpolation_figure.py"),
    output:
        png=report(
            "results/figures/{study}_interpolation.png",
            category="Landscapes per study",
            subcategory="{study}",
            caption="../report/interpolation_figure.rst",
            labels={"study": "{study}", "figure": "interpolation"},
        ),
        pdf="results/figures/{study}_interpolation.pdf",
    log:
        "results/logs/interpolation_figure/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
        pairs=get_study_pair_labels,
        log_scale=config["landscape"]["line"]["log_scale"],
    script:
        "../scripts/interpolation_figure.py"


rule metrics_figure:
    input:
        runs="results/tables/landscape_{study}.csv",
        conditions="results/tables/conditions_{study}.csv",
        code=code("metrics_figure.py"),
    output:
        png=report(
            "results/figures/{study}_metrics.png",
            category="Numbers per study",
            subcategory="{study}",
            caption="../report/metrics_figure.rst",
            labels={"study": "{study}", "figure": "metrics"},
        ),
        pdf="results/figures/{study}_metrics.pdf",
    log:
        "results/logs/metrics_figure/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
        level=config["metrics"]["level"],
    script:
        "../scripts/metrics_figure.py"


rule scale_invariance_figure:
    input:
        "results/landscape/scale_invariance.h5",
        code=code("scale_invariance_figure.py"),
    output:
        png=report(
            "results/figures/scale_invariance.png",
            category="Numbers per study",
            subcategory="scale invariance",
            caption="../report/scale_invariance.rst",
            labels={"figure": "scale invariance"},
        ),
        pdf="results/figures/scale_invariance.pdf",
    log:
        "results/logs/scale_invariance_figure.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        norms=get_scale_invariance_norms,
    script:
        "../scripts/scale_invariance_figure.py"


# Every run of a study in interactive 3-D (plotly), opened from disk: plotly.js alone is over
# the 2 MB a data URL may have in Chromium, so the report holds the light pages of study_3d.
rule explore_study:
    input:
        surfaces=get_study_surfaces,
        trajectories=get_study_trajectories,
        code=code("explore_study.py"),
    output:
        "results/figures/{study}_explore.html",
    log:
        "results/logs/explore_study/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
    script:
        "../scripts/explore_study.py"


# The report's 3-D views: a study's runs in as few light WebGL pages as keep each under
# Chromium's data-URL limit (unetscape/plots/surface_viewer.py).
rule study_3d:
    input:
        surfaces=get_study_surfaces,
        trajectories=get_study_trajectories,
        code=code("study_3d.py"),
    output:
        report(
            directory("results/figures/{study}_3d"),
            patterns=["runs{runs}.html"],
            category="Landscapes per study",
            subcategory="{study}",
            caption="../report/study_3d.rst",
            labels={"study": "{study}", "figure": "3-D, runs {runs}"},
        ),
    log:
        "results/logs/study_3d/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
    script:
        "../scripts/study_3d.py"


# One run's 3-D page, on request (not part of rule all: the study pages hold every run).
rule explore_run:
    input:
        surface=f"{LANDSCAPE_DIR}/random/surface.h5",
        trajectory=f"{LANDSCAPE_DIR}/pca/surface.h5",
        code=code("explore_run.py"),
    output:
        f"results/figures/landscape/{RUN_LOG}/explore.html",
    log:
        f"results/logs/explore_run/{RUN_LOG}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        run=get_run_id,
    script:
        "../scripts/explore_run.py"


# --- the report's pages of numbers (unetscape/plots/table_pages.py, front_page.py) ---------
# Tables as HTML pages open in the report's content frame (a CSV there is only a download, so
# each CSV stays as the download beside its page). The front page (report/workflow.rst) pastes
# in the marked parts of the pages "what was run", "claims" and "ranking".


rule report_overview:
    input:
        dataset=get_dataset(),
        tables=get_training_tables,
        code=code("report_overview.py"),
    output:
        rst="results/report/overview.rst",
        page=report(
            "results/report/overview.html",
            category="Training",
            subcategory="all runs",
            caption="../report/run_overview.rst",
            labels={"table": "what was run"},
        ),
    log:
        "results/logs/report_overview.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        settings=get_overview_settings,
    script:
        "../scripts/report_overview.py"


rule findings_pages:
    input:
        table="results/tables/findings.csv",
        claims="results/tables/claims.csv",
        code=code("findings_pages.py"),
    output:
        claims="results/report/claims.rst",
        claims_page=report(
            "results/report/claims.html",
            category="Findings",
            caption="../report/claims_summary.rst",
            labels={"table": "claims (as on the front page)"},
        ),
        page=report(
            "results/report/findings.html",
            category="Findings",
            caption="../report/findings_page.rst",
            labels={"table": "every comparison"},
        ),
    log:
        "results/logs/findings_pages.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    script:
        "../scripts/findings_pages.py"


rule conditions_page:
    input:
        table="results/tables/conditions_{study}.csv",
        runs="results/tables/landscape_{study}.csv",
        directions="results/tables/directions_{study}.csv",
        code=code("conditions_page.py"),
    output:
        conditions=report(
            "results/report/conditions_{study}.html",
            category="Tables",
            subcategory="{study}",
            caption="../report/conditions_page.rst",
            labels={"study": "{study}", "table": "conditions"},
        ),
        runs=report(
            "results/report/runs_{study}.html",
            category="Tables",
            subcategory="{study}",
            caption="../report/runs_page.rst",
            labels={"study": "{study}", "table": "runs"},
        ),
        directions=report(
            "results/report/directions_{study}.html",
            category="Tables",
            subcategory="{study}",
            caption="../report/directions_page.rst",
            labels={"study": "{study}", "table": "direction and seed variance"},
        ),
    log:
        "results/logs/conditions_page/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
        level=config["metrics"]["level"],
    script:
        "../scripts/conditions_page.py"


rule generalisation_page:
    input:
        table="results/tables/generalisation.csv",
        code=code("generalisation_page.py"),
    output:
        report(
            "results/report/generalisation.html",
            category="Generalisation",
            caption="../report/generalisation_page.rst",
            labels={"table": "ranking (on the page)"},
        ),
    log:
        "results/logs/generalisation_page.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    script:
        "../scripts/generalisation_page.py"


# --- stability and the numbers averaged over directions ------------------------------------


rule sharpness_figure:
    input:
        runs="results/tables/landscape_{study}.csv",
        eos=get_study_eos,
        code=code("sharpness_figure.py"),
    output:
        png=report(
            "results/figures/{study}_sharpness.png",
            category="Stability",
            subcategory="{study}",
            caption="../report/sharpness_figure.rst",
            labels={"study": "{study}", "figure": "edge of stability"},
        ),
        pdf="results/figures/{study}_sharpness.pdf",
    log:
        "results/logs/sharpness_figure/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
    script:
        "../scripts/sharpness_figure.py"


rule learning_rate_figure:
    input:
        runs="results/tables/landscape_{study}.csv",
        code=code("learning_rate_figure.py"),
    output:
        png=report(
            "results/figures/{study}_lr.png",
            category="Stability",
            subcategory="{study}",
            caption="../report/learning_rate_figure.rst",
            labels={"study": "{study}", "figure": "learning-rate sweep"},
        ),
        pdf="results/figures/{study}_lr.pdf",
    log:
        "results/logs/learning_rate_figure/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
        poster_lr=get_poster_lr,
        level=config["metrics"]["level"],
    script:
        "../scripts/learning_rate_figure.py"


rule directions_figure:
    input:
        table="results/tables/directions_{study}.csv",
        code=code("directions_figure.py"),
    output:
        png=report(
            "results/figures/{study}_directions.png",
            category="Numbers per study",
            subcategory="{study}",
            caption="../report/directions_figure.rst",
            labels={"study": "{study}", "figure": "direction and seed"},
        ),
        pdf="results/figures/{study}_directions.pdf",
    log:
        "results/logs/directions_figure/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
    script:
        "../scripts/directions_figure.py"


rule curves_figure:
    input:
        curves=get_study_curves,
        code=code("curves_figure.py"),
    output:
        png=report(
            "results/figures/{study}_curves.png",
            category="Landscapes per study",
            subcategory="{study}",
            caption="../report/curves_figure.rst",
            labels={"study": "{study}", "figure": "mode-connecting curves"},
        ),
        pdf="results/figures/{study}_curves.pdf",
    log:
        "results/logs/curves_figure/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
        pairs=get_study_curve_pairs,
    script:
        "../scripts/curves_figure.py"


rule parts_figure:
    input:
        runs="results/tables/landscape_{study}.csv",
        code=code("parts_figure.py"),
    output:
        png=report(
            "results/figures/{study}_parts.png",
            category="Numbers per study",
            subcategory="{study}",
            caption="../report/parts_figure.rst",
            labels={"study": "{study}", "figure": "curvature per part"},
        ),
        pdf="results/figures/{study}_parts.pdf",
    log:
        "results/logs/parts_figure/{study}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        study=get_study_params,
    script:
        "../scripts/parts_figure.py"
