"""The surface benchmark runs end to end on a tiny model and its table adds up.

Only the table's consistency is checked (columns, ratios, FLOP count, deviations), never
its timings.
"""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from unetscape.models.unet import build_model
from unetscape.workflow.config import arch_spec

REPO = Path(__file__).resolve().parents[1]
IMAGES, GRID, PER_PASS, STEPS = 6, 2, 2, 2


def conv_flops_by_hand(arch: dict, size: int) -> int:
    """2 x multiply-adds of every convolution of one forward pass of one image."""
    model = build_model(arch).eval()
    total = 0

    def count(module, inputs, output):
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):  # every input pixel scatters a kernel
            total += 2 * inputs[0].numel() * module.out_channels * kernel // module.groups
        else:  # every output pixel gathers a kernel
            total += 2 * output.numel() * module.in_channels * kernel // module.groups

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return total


@pytest.fixture(scope="module")
def benchmark_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmark") / "surface.csv"
    cmd = [sys.executable, str(REPO / "benchmarks" / "surface.py"), "--config", str(REPO / "config" / "smoke.yaml"),
           "--images", str(IMAGES), "--grid", str(GRID), "--points-per-pass", str(PER_PASS),
           "--train-steps", str(STEPS), "--threads", "1", "--bf16", "on", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, proc.stdout


def numbers(row, *keys):
    return [float(row[k]) for k in keys]


def test_every_method_has_a_row_and_the_table_prints_them(benchmark_run):
    rows, stdout = benchmark_run
    surface = [r["method"] for r in rows if r["section"] == "surface"]
    assert len(surface) == 2 and surface[0].startswith("reference") and "(workflow)" in surface[1]
    ablation = [r for r in rows if r["section"] == "ablation"]
    assert ablation[0]["method"] == surface[0]
    methods = [r["method"] for r in ablation]
    assert surface[1] in methods
    assert any("vmapped" in m for m in methods)
    assert any("matrix products" in m for m in methods)
    assert any(r["precision"] == "bfloat16" for r in ablation)
    for method in methods:
        assert method in stdout
    assert {r["section"] for r in rows} == {"surface", "ablation", "scaling", "training"}


@pytest.mark.parametrize("section", ["surface", "ablation"])
def test_ratios_and_rates_are_consistent(benchmark_run, section):
    rows, _ = benchmark_run
    timed = [r for r in rows if r["section"] == section]
    reference_rate = float(timed[0]["points_per_s"])
    for r in timed:
        points, seconds, rate, speedup = numbers(r, "points", "seconds", "points_per_s", "speedup")
        assert points == GRID * GRID
        assert rate == pytest.approx(points / seconds)
        assert speedup == pytest.approx(rate / reference_rate)
        flops, gflops, ceiling, fraction = numbers(r, "flops_per_point", "gflops", "matmul_gflops", "fraction_of_matmul")
        assert gflops == pytest.approx(flops * rate / 1e9)
        assert fraction == pytest.approx(gflops / ceiling)
        assert ceiling > 0 and float(r["peak_memory_mb"]) > 0
        assert float(r["faults_per_point"]) >= 0
    float32 = {r["matmul_gflops"] for r in rows if r.get("gflops") and r["precision"] == "float32"}
    assert len(float32) == 1  # one ceiling, the fastest of the run, for every row


def test_flops_per_point_match_a_count_by_hand(benchmark_run):
    rows, _ = benchmark_run
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    per_image = conv_flops_by_hand(arch_spec(config, "improved"), config["data"]["size"])
    reference = next(r for r in rows if r["section"] == "surface")
    assert int(reference["flops_per_point"]) == IMAGES * per_image


def test_float32_paths_agree_with_the_reference_and_bfloat16_is_measured_against_float32(benchmark_run):
    rows, _ = benchmark_run
    for r in rows:
        if r["section"] not in ("surface", "ablation"):
            continue
        if r["precision"] == "float32":
            assert r["deviation_from"] == "reference"
            assert float(r["max_rel_deviation"]) <= 1e-5
        else:
            assert r["deviation_from"] == "float32 evaluator"
            assert 0 < float(r["max_rel_deviation"]) < 0.05


def test_scaling_rows_cover_grid_points_and_images(benchmark_run):
    rows, _ = benchmark_run
    scaling = [r for r in rows if r["section"] == "scaling"]
    grid = sorted(int(r["points"]) for r in scaling if r["method"] == "grid points")
    images = sorted(int(r["images"]) for r in scaling if r["method"] == "images")
    assert grid[-1] == GRID * GRID and len(grid) >= 2
    assert images[-1] == IMAGES and len(images) >= 2
    training = [r for r in rows if r["section"] == "training"]
    assert len(training) == 2 and all(float(r["images_per_s"]) > 0 for r in training)


def test_bad_arguments_are_refused(tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks" / "surface.py"), "--grid", "1", "--out", str(tmp_path / "x.csv")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--grid" in proc.stderr
    assert not (tmp_path / "x.csv").exists()
