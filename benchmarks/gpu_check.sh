#!/usr/bin/env bash
# GPU check, under 5 minutes on one GPU: the CUDA tests, then the surface benchmark on CUDA for
# the default-config model and the paper-scale (isic2016) model. Writes CSVs, logs and a
# Markdown summary (the card's name and both tables, ready for benchmarks/RESULTS.md) to the
# folder given as the first argument (default results/benchmarks/gpu).
#
#   bash benchmarks/gpu_check.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/benchmarks/gpu}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

card=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
torch_version=$(python3 -c "import torch; print(torch.__version__, 'CUDA', torch.version.cuda)")
echo "GPU: $card; torch $torch_version"

echo "== CUDA tests"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda_paths.py tests/test_fast_evaluator.py tests/test_curvature.py \
    -k "cuda" 2>&1 | tee "$out/cuda_tests.log" || true  # a failure is reported; the timings still run

echo "== benchmark: default-config model"
python3 benchmarks/surface.py --config config/config.yaml --device cuda --images 900 --grid 11 --points-per-pass 16 \
    --out "$out/surface_default_cuda.csv" | tee "$out/surface_default_cuda.txt"

echo "== benchmark: paper-scale model (isic2016 config, synthetic 128 px images)"
python3 benchmarks/surface.py --config config/isic2016.yaml --device cuda --images 900 --grid 5 --points-per-pass 4 \
    --out "$out/surface_isic2016_cuda.csv" | tee "$out/surface_isic2016_cuda.txt"

{
    echo "GPU: $card; torch $torch_version; $(date -u +%Y-%m-%d)"
    echo
    echo "CUDA tests: $(tail -1 "$out/cuda_tests.log")"
    for name in default isic2016; do
        echo
        [ "$name" = default ] && echo "Default-config model (config/config.yaml), 900 images of 32 px, 11x11 grid:" \
            || echo "Paper-scale model (config/isic2016.yaml), 900 synthetic images of 128 px, 5x5 grid:"
        echo
        echo '```'
        cat "$out/surface_${name}_cuda.txt"
        echo '```'
    done
} > "$out/summary.md"
echo "wrote $out/summary.md"
