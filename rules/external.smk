# Landscapes of models trained elsewhere (config `external`): each state_dict file becomes a
# run of its own under results/runs/external/{name}/, measured by the same jobs as a trained
# run (the surface always in the plane job), labelled outcome `external`, and never counted
# in a study.


rule import_external:
    input:
        checkpoint=get_external_checkpoint,
        data=get_dataset(),
        model=get_external_model_code,
        code=code("import_external.py"),
    output:
        checkpoints=directory(f"{EXTERNAL_RUN}/checkpoints"),
        outcome=f"{EXTERNAL_RUN}/outcome.json",
    log:
        "results/logs/import_external/{name}.log",
    conda:
        "../envs/unetscape.yaml"
    params:
        spec=get_external_spec,
        loss=get_external_loss,
    script:
        "../scripts/import_external.py"


rule external_random_plane:
    input:
        checkpoints=f"{EXTERNAL_RUN}/checkpoints",
        outcome=f"{EXTERNAL_RUN}/outcome.json",
        data=get_dataset(),
        model=get_external_model_code,
        code=code("random_plane.py"),
    output:
        surface=f"{EXTERNAL_LANDSCAPE}/random/surface.h5",
        directions=f"{EXTERNAL_LANDSCAPE}/random/directions.h5",
        line=f"{EXTERNAL_LANDSCAPE}/random/line.h5",
        line_directions=f"{EXTERNAL_LANDSCAPE}/random/line_directions.h5",
        sets=f"{EXTERNAL_LANDSCAPE}/random/sets.h5",
    log:
        "results/logs/random_plane/external/{name}.log",
    benchmark:
        "results/benchmarks/random_plane/external/{name}.tsv"
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        plane=config["landscape"]["plane"],
        line=config["landscape"]["line"],
        sets=config["landscape"]["direction_sets"],
        evaluation=EVALUATION,
        noise=0.0,
    script:
        "../scripts/random_plane.py"


rule external_run_measures:
    input:
        checkpoints=f"{EXTERNAL_RUN}/checkpoints",
        outcome=f"{EXTERNAL_RUN}/outcome.json",
        data=get_dataset(),
        model=get_external_model_code,
        code=code("run_measures.py"),
    output:
        directions=f"{EXTERNAL_LANDSCAPE}/pca/directions.h5",
        surface=f"{EXTERNAL_LANDSCAPE}/pca/surface.h5",
        projection=f"{EXTERNAL_LANDSCAPE}/pca/projection.h5",
        interpolation=f"{EXTERNAL_LANDSCAPE}/interpolation_init.h5",
        hessian=f"{EXTERNAL_LANDSCAPE}/hessian.json",
        flatness=f"{EXTERNAL_LANDSCAPE}/flatness.json",
        eigen_directions=f"{EXTERNAL_LANDSCAPE}/eigen/directions.h5",
        eigen_surface=f"{EXTERNAL_LANDSCAPE}/eigen/surface.h5",
    log:
        "results/logs/run_measures/external/{name}.log",
    benchmark:
        "results/benchmarks/run_measures/external/{name}.tsv"
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        trajectory=config["landscape"]["trajectory"],
        interpolation=config["landscape"]["interpolation"],
        curvature=config["curvature"],
        flatness=config["flatness"],
        evaluation=EVALUATION,
        noise=0.0,
        eigen_plane=config["landscape"]["eigen_plane"],
        parts=config["curvature"]["parts"]["every_run"],
    script:
        "../scripts/run_measures.py"


rule external_run_figures:
    input:
        surface=f"{EXTERNAL_LANDSCAPE}/random/surface.h5",
        line=f"{EXTERNAL_LANDSCAPE}/random/line.h5",
        interpolation=f"{EXTERNAL_LANDSCAPE}/interpolation_init.h5",
        trajectory=f"{EXTERNAL_LANDSCAPE}/pca/surface.h5",
        eigen=f"{EXTERNAL_LANDSCAPE}/eigen/surface.h5",
        outcome=f"{EXTERNAL_RUN}/outcome.json",
        code=code("run_figures.py"),
    output:
        surface=report(
            "results/figures/landscape/external/{name}/surface.png",
            category="Landscapes per run",
            subcategory="external",
            caption="../report/run_surface.rst",
            labels={"run": "external/{name}", "figure": "surface"},
        ),
        lines=report(
            "results/figures/landscape/external/{name}/lines.png",
            category="Landscapes per run",
            subcategory="external",
            caption="../report/run_lines.rst",
            labels={"run": "external/{name}", "figure": "1-D"},
        ),
        trajectory=report(
            "results/figures/landscape/external/{name}/trajectory.png",
            category="Landscapes per run",
            subcategory="external",
            caption="../report/run_trajectory.rst",
            labels={"run": "external/{name}", "figure": "trajectory"},
        ),
        sharpest=report(
            "results/figures/landscape/external/{name}/sharpest.png",
            category="Landscapes per run",
            subcategory="external",
            caption="../report/run_sharpest.rst",
            labels={"run": "external/{name}", "figure": "random and sharpest view"},
        ),
        random_vts=f"{EXTERNAL_LANDSCAPE}/random/surface.vts",
        pca_vts=f"{EXTERNAL_LANDSCAPE}/pca/surface.vts",
        eigen_vts=f"{EXTERNAL_LANDSCAPE}/eigen/surface.vts",
    log:
        "results/logs/run_figures/external/{name}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        run="external/{name}",
        levels=config["landscape"]["contour_levels"],
        log_scale=config["landscape"]["line"]["log_scale"],
        threshold=config["metrics"]["topology"]["threshold"],
    script:
        "../scripts/run_figures.py"


# One external model's 3-D page, on request.
rule external_explore_run:
    input:
        surface=f"{EXTERNAL_LANDSCAPE}/random/surface.h5",
        trajectory=f"{EXTERNAL_LANDSCAPE}/pca/surface.h5",
        code=code("explore_run.py"),
    output:
        "results/figures/landscape/external/{name}/explore.html",
    log:
        "results/logs/explore_run/external/{name}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        run="external/{name}",
    script:
        "../scripts/explore_run.py"
