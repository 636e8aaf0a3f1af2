# Loss landscapes of every run's final weights (Li et al. 2018): a filter-normalised random
# plane evaluated in scattered chunks, a 1-D line, interpolations and the PCA trajectory.


rule directions:
    input:
        checkpoints=f"{RUN_DIR}/checkpoints",
        code=code("landscape"),
    output:
        f"{LANDSCAPE_DIR}/random/directions.h5",
    log:
        f"results/logs/directions/{RUN_LOG}.log",
    # Seconds of work (two random vectors the size of the model): cheaper than queueing.
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    params:
        plane=config["landscape"]["plane"],
    script:
        "../scripts/directions.py"


rule surface_chunk:
    input:
        checkpoints=f"{RUN_DIR}/checkpoints",
        directions=f"{LANDSCAPE_DIR}/random/directions.h5",
        data=get_dataset(),
        code=code("landscape"),
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
        evaluation=config["landscape"]["evaluation"],
        noise=get_run_noise,
        device=config["device"],
    script:
        "../scripts/surface_chunk.py"


rule merge_surface:
    input:
        chunks=gather.surface(f"{LANDSCAPE_DIR_ESC}/random/chunks/{{scatteritem}}.h5"),
        code=code("merge"),
    output:
        f"{LANDSCAPE_DIR}/random/surface.h5",
    log:
        f"results/logs/merge_surface/{RUN_LOG}.log",
    localrule: True
    conda:
        "../envs/unetscape.yaml"
    script:
        "../scripts/merge_surface.py"


rule line_1d:
    input:
        checkpoints=f"{RUN_DIR}/checkpoints",
        directions=f"{LANDSCAPE_DIR}/random/directions.h5",
        data=get_dataset(),
        code=code("landscape"),
    output:
        line=f"{LANDSCAPE_DIR}/random/line.h5",
        directions=f"{LANDSCAPE_DIR}/random/line_directions.h5",
    log:
        f"results/logs/line_1d/{RUN_LOG}.log",
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        line=config["landscape"]["line"],
        evaluation=config["landscape"]["evaluation"],
        noise=get_run_noise,
        device=config["device"],
    script:
        "../scripts/line_1d.py"


rule interpolate:
    input:
        checkpoints=f"{RUN_DIR}/checkpoints",
        data=get_dataset(),
        code=code("landscape"),
    output:
        f"{LANDSCAPE_DIR}/interpolation_init.h5",
    log:
        f"results/logs/interpolate/{RUN_LOG}.log",
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        t=config["landscape"]["interpolation"]["t"],
        evaluation=config["landscape"]["evaluation"],
        noise=get_run_noise,
        device=config["device"],
    script:
        "../scripts/interpolate.py"


rule interpolate_seeds:
    input:
        a="results/runs/{arch}/{optim}/noise{noise}/seed{seed}/checkpoints",
        b="results/runs/{arch}/{optim}/noise{noise}/seed{seed_b}/checkpoints",
        data=get_dataset(),
        code=code("landscape"),
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
        t=config["landscape"]["interpolation"]["t"],
        evaluation=config["landscape"]["evaluation"],
        noise=get_run_noise,
        device=config["device"],
    script:
        "../scripts/interpolate_seeds.py"


rule trajectory:
    input:
        checkpoints=f"{RUN_DIR}/checkpoints",
        data=get_dataset(),
        code=code("landscape"),
    output:
        directions=f"{LANDSCAPE_DIR}/pca/directions.h5",
        surface=f"{LANDSCAPE_DIR}/pca/surface.h5",
        projection=f"{LANDSCAPE_DIR}/pca/projection.h5",
    log:
        f"results/logs/trajectory/{RUN_LOG}.log",
    benchmark:
        f"results/benchmarks/trajectory/{RUN_LOG}.tsv"
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        trajectory=config["landscape"]["trajectory"],
        evaluation=config["landscape"]["evaluation"],
        noise=get_run_noise,
        device=config["device"],
    script:
        "../scripts/trajectory.py"


rule hessian:
    input:
        checkpoints=f"{RUN_DIR}/checkpoints",
        data=get_dataset(),
        code=code("hessian"),
    output:
        f"{LANDSCAPE_DIR}/hessian.json",
    log:
        f"results/logs/hessian/{RUN_LOG}.log",
    benchmark:
        f"results/benchmarks/hessian/{RUN_LOG}.tsv"
    conda:
        "../envs/unetscape.yaml"
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        curvature=config["curvature"],
        evaluation=config["landscape"]["evaluation"],
        noise=get_run_noise,
        device=config["device"],
    script:
        "../scripts/hessian.py"


rule scale_invariance:
    input:
        checkpoints=get_scale_invariance_checkpoints,
        data=get_dataset(),
        code=code("landscape"),
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
        evaluation=config["landscape"]["evaluation"],
        device=config["device"],
    script:
        "../scripts/scale_invariance.py"
