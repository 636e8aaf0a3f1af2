"""Surface-evaluation benchmark: the reference approach against the workflow's evaluator.

    python benchmarks/surface.py                                   # smoke-sized model, < 1 minute
    python benchmarks/surface.py --config config/config.yaml       # the default-config model
    python benchmarks/surface.py --config config/config.yaml --device cuda
    python benchmarks/surface.py --config config/isic2016.yaml --images 100 --grid 2   # paper-scale model

On one model, data set and grid, in one process, it times the reference implementation's
way of evaluating a surface (per point: load_state_dict, a DataLoader with batch 128, eval,
no_grad) against `SurfaceEvaluator` as the workflow runs it, head to head ("surface" rows);
then the reference again beside ablations that switch the evaluator's speed options on one by
one, several points per vmapped pass, and bfloat16 ("ablation" rows). For each it reports
points/s, the speed-up over that section's reference, forward FLOPs per point
(FlopCounterMode), achieved GFLOP/s against the fastest float32 matrix product timed in the
same run, the largest deviation from the reference's values, peak memory and page faults per
point. Then how the time grows with grid points and with the data set, and training
throughput. Prints a table; writes a CSV (`--out`).

A benchmark, never a test: its numbers depend on the machine. The test suite runs it on a
tiny model to check the table, not the timings.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from unetscape.data.prepare import prepare_dataset
from unetscape.landscape import SurfaceGrid, make_directions
from unetscape.landscape.reference import ReferenceEvaluator
from unetscape.landscape.surface import SurfaceEvaluator
from unetscape.models.losses import dice_loss
from unetscape.models.checkpoints import load_checkpoint
from unetscape.models.unet import build_model
from unetscape.training.evaluation import evaluate, images_to_tensor, masks_to_tensor
from unetscape.workflow.config import arch_spec

REPO = Path(__file__).resolve().parents[1]
COLUMNS = [
    "section", "method", "device", "threads", "precision", "points", "images", "seconds", "points_per_s",
    "images_per_s", "speedup", "flops_per_point", "gflops", "matmul_gflops", "fraction_of_matmul",
    "max_rel_deviation", "deviation_from", "peak_memory_mb", "faults_per_point",
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "config" / "smoke.yaml"), help="workflow config (model, data)")
    parser.add_argument("--arch", default="improved", help="architecture name from the config's archs")
    parser.add_argument("--checkpoint", help="a trained checkpoint instead of a seeded initialisation")
    parser.add_argument("--images", type=int, help="evaluation images (default: the config's data.num_images)")
    parser.add_argument("--grid", type=int, default=5, help="grid points per axis (default 5)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: the config's threads, as its jobs run)")
    parser.add_argument("--points-per-pass", type=int, default=8, help="points per vmapped pass in that row")
    parser.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                        help="bfloat16 row; auto: only where bf16 matrix products run at least at float32 speed "
                             "(GPUs, CPUs with AMX/AVX512-BF16; elsewhere bf16 is emulated and very slow)")
    parser.add_argument("--train-steps", type=int, default=20, help="training steps timed (0: skip)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling rows")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds over the grid; each point's fastest round counts (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks" / "surface.csv"), help="CSV output")
    return parser.parse_args(argv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def device_memory(device: torch.device) -> int:
    return torch.cuda.memory_allocated(device) if device.type == "cuda" else 0


def peak_memory_mb(device: torch.device, before: int = 0) -> float:
    """CUDA: peak memory allocated since the last reset, beyond `before` (what one method
    added). CPU: the process's peak resident memory so far (the CPU allocator keeps no peak)."""
    if device.type == "cuda":
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_gflops(device: torch.device, dtype=torch.float32, repeats: int = 5) -> float:
    """Measured GFLOP/s of a large square matrix product: the machine's practical ceiling.

    The size doubles up to 2048 (CPU) or 8192 (CUDA) while one product takes under 0.2 s, so
    a dtype the machine only emulates (bfloat16 on a CPU without bf16 units) stays quick.
    """
    largest = 2048 if device.type == "cpu" else 8192
    n = 256
    while True:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        times = []
        for k in range(repeats + 2):
            sync(device)
            start = time.perf_counter()
            torch.mm(a, b)
            sync(device)
            if k >= 2:  # warm-up: thread pools, kernel selection
                times.append(time.perf_counter() - start)
            elif time.perf_counter() - start > 0.2:
                break
        if times and (n >= largest or statistics.median(times) > 0.05):
            return 2 * n**3 / min(times) / 1e9  # the fastest, as for the methods timed
        if not times:  # too slow to repeat: one product is the measurement
            return 2 * n**3 / (time.perf_counter() - start) / 1e9
        n *= 2


def forward_flops(model, x, y) -> int:
    """FLOPs of one evaluation pass over (x, y), counted by PyTorch's FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        evaluate(model, x, y, batch_size=128)
    return counter.get_total_flops()


def time_points(evaluator, coords: list, device, many: int = 1, repeats: int = 1) -> tuple[float, list[float]]:
    """Fastest of `repeats` timings of evaluating every coordinate, and the losses. The
    minimum: on a shared or virtual machine, noise only ever adds time."""
    best = math.inf
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        if many > 1:
            values = [v for k in range(0, len(coords), many) for v in evaluator.evaluate_many(coords[k : k + many])]
        else:
            values = [evaluator.evaluate(c) for c in coords]
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, [v["loss"] for v in values]


def interleaved_rounds(methods: list[dict], coords: list, device, rounds: int, after_round=None) -> None:
    """Time every method over the grid, taking turns point by point, `rounds` times.

    Within a round the methods evaluate point 1 one after the other, then point 2, and so on
    (a vmapped method: its group of points), so each point of every method is timed within
    seconds of the others': a slow spell of a shared machine hits them all alike. Each
    method's time is the sum over its points (groups) of their fastest round. Sets
    method["seconds"], method["loss"] (the last round's losses, in grid order) and
    method["faults"] (minor page faults of the process in its last round: memory the method
    had the kernel map in afresh). `after_round()` runs after every round.
    """
    for method in methods:
        many = method["many"]
        method["groups"] = [coords[k : k + many] for k in range(0, len(coords), many)]
        method["best"] = [math.inf] * len(method["groups"])
    for _ in range(rounds):
        for method in methods:
            method["faults"] = 0
        for k in range(max(len(m["groups"]) for m in methods)):
            for method in methods:
                if k >= len(method["groups"]):
                    continue
                group, evaluator = method["groups"][k], method["evaluator"]
                sync(device)
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                start = time.perf_counter()
                values = evaluator.evaluate_many(group) if method["many"] > 1 else [evaluator.evaluate(group[0])]
                sync(device)
                method["best"][k] = min(method["best"][k], time.perf_counter() - start)
                method["faults"] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
                method.setdefault("values", {})[k] = [v["loss"] for v in values]
        if after_round is not None:
            after_round()
    for method in methods:
        method["seconds"] = sum(method["best"])
        method["loss"] = [loss for k in range(len(method["groups"])) for loss in method["values"][k]]


def max_rel_deviation(values, reference) -> float:
    values, reference = np.asarray(values), np.asarray(reference)
    return float(np.max(np.abs(values - reference) / np.maximum(np.abs(reference), 1e-12)))


def training_throughput(arch, x, y, batch_size: int, steps: int, channels_last: bool, device, repeats: int = 1) -> float:
    """Images/s of SGD steps as the training loop runs them (Dice loss, .item() every step)."""
    torch.manual_seed(0)
    model = build_model(arch).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)

    def run(count):
        for _ in range(count):
            idx = torch.randint(0, len(x), (batch_size,), generator=generator).to(device)
            loss = dice_loss(model(x[idx]), y[idx])
            loss.item()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    run(3)
    best = math.inf
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        run(steps)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return steps * batch_size / best


def setup(args):
    config = yaml.safe_load(Path(args.config).read_text())
    device = torch.device(args.device)
    args.threads = args.threads or config["threads"]
    torch.set_num_threads(args.threads)
    data_cfg = dict(config["data"])
    if data_cfg["source"] != "synthetic":
        # Timing needs images of the right size, not the real ones: synthetic ones of that size.
        data_cfg = {"source": "synthetic", "size": data_cfg["size"], "num_images": data_cfg.get("num_images") or 900}
        print(f"{args.config}: data.source is not synthetic; timing on synthetic images of size {data_cfg['size']}",
              file=sys.stderr)
    if args.images:
        data_cfg["num_images"] = args.images
    dataset = prepare_dataset(data_cfg)
    x = images_to_tensor(dataset.images, device)
    y = masks_to_tensor(dataset.masks, device)
    if args.checkpoint:
        model = load_checkpoint(args.checkpoint, device)
        arch = model.arch
    else:
        arch = arch_spec(config, args.arch)
        torch.manual_seed(args.seed)
        model = build_model(arch).to(device)
        with torch.no_grad():  # running statistics of real activations, as after training
            model.train()
            model(x[:128])
        model.eval()
    directions = make_directions(model, seed=args.seed + 1)
    grid = SurfaceGrid.from_config([-1, 1, args.grid], [-1, 1, args.grid])
    coords = [grid.coordinates(p) for p in grid.points()]
    evaluation = config["landscape"]["evaluation"]
    return config, device, x, y, model, arch, directions, coords, evaluation


def run(args) -> list[dict]:
    config, device, x, y, model, arch, directions, coords, evaluation = setup(args)
    threads = args.threads if device.type == "cpu" else 0
    base = {"device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device), "threads": threads}
    flops = forward_flops(model, x, y)
    # The matmul ceiling is measured again after every round and the fastest kept: a slow
    # spell of a shared machine would otherwise lower the ceiling and flatter the fractions.
    ceilings = {"float32": matmul_gflops(device), "bfloat16": matmul_gflops(device, torch.bfloat16)}

    def measure_ceilings() -> None:
        ceilings["float32"] = max(ceilings["float32"], matmul_gflops(device))
        if bf16_row:
            ceilings["bfloat16"] = max(ceilings["bfloat16"], matmul_gflops(device, torch.bfloat16))

    peak, peak_bf16 = ceilings["float32"], ceilings["bfloat16"]
    print(f"model {arch}, {len(x)} images {tuple(x.shape[1:])}, {len(coords)} grid points on {base['device']}",
          file=sys.stderr)
    print(f"forward: {flops / 1e9:.3f} GFLOP per point; matmul: {peak:.1f} GFLOP/s float32, "
          f"{peak_bf16:.1f} bfloat16", file=sys.stderr)
    rows = []

    def record(section, method, seconds, precision="float32", points=len(coords), images=len(x), **extra):
        row = {**base, "section": section, "method": method, "precision": precision, "points": points,
               "images": images, "seconds": seconds, "points_per_s": points / seconds,
               "flops_per_point": flops * images // len(x), **extra}
        row["gflops"] = row["flops_per_point"] * row["points_per_s"] / 1e9
        rows.append(row)
        print(f"  {section:9s} {method:38s} {seconds:8.2f} s  {row['points_per_s']:8.2f} points/s", file=sys.stderr)
        return row

    workflow = {"bn": evaluation["bn"], "batch_size": evaluation["batch_size"], "precision": "float32",
                "points_per_pass": 1}
    variants = [
        ("in-place updates, batch 128", {"batch_size": 128, "fold_bn": False, "channels_last": False}, 1),
        ("+ BN folding", {"batch_size": 128, "channels_last": False, "patch_matmul": False}, 1),
        ("+ channels_last", {"batch_size": 128, "channels_last": True, "patch_matmul": False}, 1),
        ("+ up-sampling as matrix products", {"batch_size": 128, "channels_last": True, "patch_matmul": True}, 1),
        ("auto batch and layout (workflow)", {}, 1),
        (f"+ {args.points_per_pass} points per vmapped pass", {"points_per_pass": args.points_per_pass},
         args.points_per_pass),
    ]
    bf16_row = args.bf16 == "on" or (args.bf16 == "auto" and peak_bf16 >= peak)
    if bf16_row:
        variants.append(("bfloat16 autocast", {"precision": "bfloat16"}, 1))
    else:
        print(f"bfloat16 row skipped: bf16 matrix products run at {peak_bf16:.1f} GFLOP/s against "
              f"{peak:.1f} float32 (no bf16 units; --bf16 on to time it anyway)", file=sys.stderr)

    def compare(section: str, specs: list) -> None:
        """Build every method (each warms up once), time them in interleaved rounds, record rows."""
        methods = []
        for label, options, many in specs:
            before = device_memory(device)
            if options is None:
                evaluator = ReferenceEvaluator(model, x, y, directions, bn="checkpoint", batch_size=128)
                precision = "float32"
            else:
                options = {**workflow, **options}
                evaluator = SurfaceEvaluator(model, x, y, directions, **options)
                precision = options["precision"]
            methods.append({"label": label, "evaluator": evaluator, "many": many, "precision": precision,
                            "own": device_memory(device) - before})
        # All are built before any moves the shared model off theta*; then each warms up once.
        for method in methods:
            resident = device_memory(device)
            reset_peak(device)
            time_points(method["evaluator"], coords[: method["many"]], device, method["many"])
            # Its own data plus what its forward passes allocate, not the other methods' data.
            method["memory"] = peak_memory_mb(device, resident - method["own"])
        interleaved_rounds(methods, coords, device, args.repeats, after_round=measure_ceilings)
        for method in reversed(methods):
            method["evaluator"].close()
        reference_loss = methods[0]["loss"]
        float32_loss = next(m["loss"] for m in methods if "(workflow)" in m["label"])
        first = len(rows)
        for method in methods:
            bf16 = method["precision"] == "bfloat16"
            record(section, method["label"], method["seconds"], method["precision"], peak_memory_mb=method["memory"],
                   max_rel_deviation=max_rel_deviation(method["loss"], float32_loss if bf16 else reference_loss),
                   deviation_from="float32 evaluator" if bf16 else "reference",
                   faults_per_point=method["faults"] / len(coords))
        for row in rows[first:]:
            row["speedup"] = row["points_per_s"] / rows[first]["points_per_s"]

    reference = ("reference (load_state_dict + DataLoader)", None, 1)
    # Head to head: only the two compared methods share the process. Methods in one process
    # change each other's allocator state: beside the ablation methods' allocations the
    # reference's large temporary tensors reuse freed memory instead of page-faulting fresh
    # memory in, as they do when it runs on its own (faults_per_point shows it).
    compare("surface", [reference, ("auto batch and layout (workflow)", {}, 1)])
    compare("ablation", [reference] + variants)
    if not args.no_scaling:
        with SurfaceEvaluator(model, x, y, directions, **workflow) as evaluator:
            evaluator.evaluate(coords[0])
            for count in sorted({max(1, len(coords) // 4), max(1, len(coords) // 2), len(coords)}):
                seconds, _ = time_points(evaluator, coords[:count], device, repeats=args.repeats)
                record("scaling", "grid points", seconds, points=count)
        few = coords[: min(len(coords), 4)]
        for count in sorted({max(1, len(x) // 4), max(1, len(x) // 2), len(x)}):
            with SurfaceEvaluator(model, x[:count], y[:count], directions, **workflow) as evaluator:
                evaluator.evaluate(few[0])
                seconds, _ = time_points(evaluator, few, device, repeats=args.repeats)
            record("scaling", "images", seconds, points=len(few), images=count)

    if args.train_steps > 0:
        batch = config["training"]["batch_size"]
        for label, channels_last in (("training steps (NCHW)", False), ("training steps (channels_last)", True)):
            rate = training_throughput(arch, x, y, batch, args.train_steps, channels_last, device, args.repeats)
            rows.append({**base, "section": "training", "method": label, "precision": "float32",
                         "images": batch * args.train_steps, "seconds": batch * args.train_steps / rate,
                         "images_per_s": rate})
            print(f"  training  {label:38s} {rate:8.1f} images/s", file=sys.stderr)
    for row in rows:  # fractions of the fastest ceilings measured in the whole run
        if "gflops" in row:
            row["matmul_gflops"] = ceilings["bfloat16" if row["precision"] == "bfloat16" else "float32"]
            row["fraction_of_matmul"] = row["gflops"] / row["matmul_gflops"]
    print(f"fastest matmul: {ceilings['float32']:.1f} GFLOP/s float32, {ceilings['bfloat16']:.1f} bfloat16",
          file=sys.stderr)
    return rows


def fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def table(rows: list[dict]) -> str:
    lines = [
        f"{'section':9s} {'method':40s} {'prec':9s} {'points':>6s} {'images':>6s} {'s':>8s} {'pts/s':>8s} "
        f"{'x ref':>6s} {'GFLOP/s':>8s} {'%mm':>5s} {'max dev':>8s} {'MB':>7s} {'faults/pt':>9s}"
    ]
    for r in rows:
        rate = fmt(r.get("points_per_s"), ".2f") if r["section"] != "training" else fmt(r["images_per_s"], ".0f") + " img"
        lines.append(
            f"{r['section']:9s} {r['method']:40s} {r['precision']:9s} {fmt(r.get('points'), 'd'):>6s} "
            f"{fmt(r.get('images'), 'd'):>6s} {fmt(r.get('seconds'), '.2f'):>8s} {rate:>8s} "
            f"{fmt(r.get('speedup'), '.2f'):>6s} {fmt(r.get('gflops'), '.1f'):>8s} "
            f"{fmt(100 * r['fraction_of_matmul'] if 'fraction_of_matmul' in r else None, '.0f'):>5s} "
            f"{fmt(r.get('max_rel_deviation'), '.1e'):>8s} {fmt(r.get('peak_memory_mb'), '.0f'):>7s} "
            f"{fmt(r.get('faults_per_point'), '.0f'):>9s}"
        )
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in COLUMNS} for r in rows)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.grid < 2:
        sys.exit("--grid must be at least 2")
    if args.repeats < 1:
        sys.exit("--repeats must be at least 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: CUDA is not available")
    rows = run(args)
    print(table(rows))
    write_csv(rows, Path(args.out))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
