# Loss landscapes of every run's measured weights (Li et al. 2018): a filter-normalised random
# plane evaluated in scattered chunks, its 1-D line, the training path (PCA trajectory and the
# straight line from the initial weights), interpolations between seeds, the curvature and the
# flatness measures.
# Each job measures the checkpoint the run's outcome.json names (never the initial weights).


rule random_plane:
    input:
        checkpoints=f"{RUN_DIR}/checkpoints",
        measured=f"{RUN_DIR}/measured.pt",
        outcome=f"{RUN_DIR}/outcome.json",
        data=get_dataset(),
        model=get_model_code,
        code=code("random_plane.py"),
    output:
        **SURFACE_IN_PLANE_JOB,
        directions=f"{LANDSCAPE_DIR}/random/directions.h5",
        line=f"{LANDSCAPE_DIR}/random/line.h5",
        line_directions=f"{LANDSCAPE_DIR}/random/line_directions.h5",
        # K seeded planes and lines on a coarser grid: the numbers averaged over directions
        sets=f"{LANDSCAPE_DIR}/random/sets.h5",
        # With one chunk the surface is evaluated in this job too: no chunk and merge jobs.
    log:
        f"results/logs/random_plane/{RUN_LOG}.log",
    benchmark:
        f"results/benchmarks/random_plane/{RUN_LOG}.tsv"
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
        noise=get_run_noise,
    script:
        "../scripts/random_plane.py"


# A surface in several chunks: each chunk its own job (a cluster spreads them over GPUs), then
# one merge.
if SURFACE_CHUNKS > 1:

    rule surface_chunk:
        input:
            checkpoints=f"{RUN_DIR}/checkpoints",
            measured=f"{RUN_DIR}/measured.pt",
            outcome=f"{RUN_DIR}/outcome.json",
            directions=f"{LANDSCAPE_DIR}/random/directions.h5",
            data=get_dataset(),
            model=get_model_code,
            code=code("surface_chunk.py"),
        output:
            temp(f"{LANDSCAPE_DIR}/random/chunks/{{scatteritem}}.h5"),
        log:
            f"results/logs/surface_chunk/{RUN_LOG}/{{scatteritem}}.log",
        benchmark:
            f"results/benchmarks/surface_chunk/{RUN_LOG}/{{scatteritem}}.tsv"
        conda:
            "../envs/unetscape.yaml"
        threads: config["threads"]
        resources:
            **GPU_JOB,
        params:
            evaluation=EVALUATION,
            noise=get_run_noise,
        script:
            "../scripts/surface_chunk.py"

    rule merge_surface:
        input:
            chunks=gather.surface(
                f"{LANDSCAPE_DIR_ESC}/random/chunks/{{scatteritem}}.h5"
            ),
            code=code("merge_surface.py"),
        output:
            f"{LANDSCAPE_DIR}/random/surface.h5",
        log:
            f"results/logs/merge_surface/{RUN_LOG}.log",
        localrule: True
        conda:
            "../envs/unetscape.yaml"
        script:
            "../scripts/merge_surface.py"


# Everything else measured at a run's weights, in one job (one process start-up instead of
# two): the training path and the curvature and flatness measures.
rule run_measures:
    input:
        checkpoints=f"{RUN_DIR}/checkpoints",
        measured=f"{RUN_DIR}/measured.pt",
        outcome=f"{RUN_DIR}/outcome.json",
        data=get_dataset(),
        model=get_model_code,
        code=code("run_measures.py"),
    output:
        directions=f"{LANDSCAPE_DIR}/pca/directions.h5",
        surface=f"{LANDSCAPE_DIR}/pca/surface.h5",
        projection=f"{LANDSCAPE_DIR}/pca/projection.h5",
        interpolation=f"{LANDSCAPE_DIR}/interpolation_init.h5",
        hessian=f"{LANDSCAPE_DIR}/hessian.json",
        flatness=f"{LANDSCAPE_DIR}/flatness.json",
        eigen_directions=f"{LANDSCAPE_DIR}/eigen/directions.h5",
        eigen_surface=f"{LANDSCAPE_DIR}/eigen/surface.h5",
    log:
        f"results/logs/run_measures/{RUN_LOG}.log",
    benchmark:
        f"results/benchmarks/run_measures/{RUN_LOG}.tsv"
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
        noise=get_run_noise,
        eigen_plane=config["landscape"]["eigen_plane"],
        parts=get_run_parts,
    script:
        "../scripts/run_measures.py"


rule interpolate_seeds:
    input:
        a="results/runs/{arch}/{optim}/noise{noise}/seed{seed}/checkpoints",
        outcome_a="results/runs/{arch}/{optim}/noise{noise}/seed{seed}/outcome.json",
        b="results/runs/{arch}/{optim}/noise{noise}/seed{seed_b}/checkpoints",
        outcome_b="results/runs/{arch}/{optim}/noise{noise}/seed{seed_b}/outcome.json",
        measured=get_pair_measured,
        data=get_dataset(),
        model=get_model_code,
        code=code("interpolate_seeds.py"),
    output:
        "results/landscape/{arch}/{optim}/noise{noise}/seeds{seed}-{seed_b}/interpolation.h5",
    log:
        "results/logs/interpolate_seeds/{arch}/{optim}/noise{noise}/seeds{seed}-{seed_b}.log",
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        interpolation=config["landscape"]["interpolation"],
        evaluation=EVALUATION,
        noise=get_run_noise,
    script:
        "../scripts/interpolate_seeds.py"


rule scale_invariance:
    input:
        checkpoints=get_scale_invariance_checkpoints,
        outcomes=get_scale_invariance_outcomes,
        measured=get_scale_invariance_measured,
        data=get_dataset(),
        model=get_scale_invariance_model_code,
        code=code("scale_invariance.py"),
    output:
        "results/landscape/scale_invariance.h5",
    log:
        "results/logs/scale_invariance.log",
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        runs=config["scale_invariance"]["runs"],
        settings=config["scale_invariance"],
        plane=config["landscape"]["plane"],
        evaluation=EVALUATION,
    script:
        "../scripts/scale_invariance.py"


# Does a run train at its optimiser's edge of stability? lambda_max and the batch sharpness at
# a few of its checkpoints, against 2/lr, 2(1+beta)/lr and 2(1-beta)/lr (every run, landscapes
# or not: the learning-rate sweep has only these).
rule edge_of_stability:
    input:
        checkpoints=f"{RUN_DIR}/checkpoints",
        outcome=f"{RUN_DIR}/outcome.json",
        measured=f"{RUN_DIR}/measured.pt",
        data=get_dataset(),
        model=get_model_code,
        code=code("edge_of_stability.py"),
    output:
        f"{LANDSCAPE_DIR}/edge_of_stability.json",
    log:
        f"results/logs/edge_of_stability/{RUN_LOG}.log",
    benchmark:
        f"results/benchmarks/edge_of_stability/{RUN_LOG}.tsv"
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        sharpness=config["stability"]["sharpness"],
        evaluation=EVALUATION,
        noise=get_run_noise,
    script:
        "../scripts/edge_of_stability.py"


# A low-loss path between two seeds' minima (Garipov et al. 2018): a quadratic Bezier curve whose
# bend is trained, and the straight line, on the same t grid (consecutive seeds of a condition,
# for the studies `curves.studies` names).
rule connect_seeds:
    input:
        a="results/runs/{arch}/{optim}/noise{noise}/seed{seed}/checkpoints",
        outcome_a="results/runs/{arch}/{optim}/noise{noise}/seed{seed}/outcome.json",
        b="results/runs/{arch}/{optim}/noise{noise}/seed{seed_b}/checkpoints",
        outcome_b="results/runs/{arch}/{optim}/noise{noise}/seed{seed_b}/outcome.json",
        measured=get_pair_measured,
        data=get_dataset(),
        model=get_model_code,
        code=code("connect_seeds.py"),
    output:
        "results/landscape/{arch}/{optim}/noise{noise}/seeds{seed}-{seed_b}/curve.h5",
    log:
        "results/logs/connect_seeds/{arch}/{optim}/noise{noise}/seeds{seed}-{seed_b}.log",
    benchmark:
        "results/benchmarks/connect_seeds/{arch}/{optim}/noise{noise}/seeds{seed}-{seed_b}.tsv"
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        curves=CURVE_SETTINGS,
        evaluation=EVALUATION,
        noise=get_run_noise,
    script:
        "../scripts/connect_seeds.py"
