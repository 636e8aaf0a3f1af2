"""Constraints between config values that a JSON schema cannot express.

Each check raises ConfigError naming the dotted key, so a config that would fail minutes into
a job (or quietly compute the wrong thing) stops when it is loaded, before any job runs. All
of them are cheap: the whole DAG is built on every snakemake call. `check_config` runs them
all; `validate_config` calls it after the schema.

    python -m unetscape.workflow.config_checks FILE...   checks config files as the workflow does
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import ConfigError, all_runs, arch_spec, data_channels, study_runs
from .strict_yaml import YamlError, load_yaml_file

if TYPE_CHECKING:
    import jsonschema

# Grid axes [min, max, num] around the trained weights (at coordinate 0).
AXES = ("landscape.plane.x", "landscape.plane.y", "landscape.line.x", "landscape.direction_sets.x",
        "landscape.direction_sets.y", "landscape.direction_sets.line", "landscape.eigen_plane.x",
        "landscape.eigen_plane.y", "scale_invariance.x")
INTERPOLATION = "landscape.interpolation.t"
# Output names each study writes under results/figures/ ({study}{suffix}.png) and a figure
# name of the workflow's own.
STUDY_FIGURES = ("", "_landscape", "_interpolation", "_metrics")
WORKFLOW_FIGURES = ("scale_invariance",)
# A PCA plane needs three saved checkpoints (unetscape/jobs/, trajectory).
PCA_CHECKPOINTS = 3


def _where(error: jsonschema.ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Check `config` against the JSON schema, the cross-references between its sections and
    the constraints between its values (`check_config`).

    Raises ConfigError with one line naming the offending key.
    """
    import jsonschema  # only validation needs it: the package's numerical code runs without it


    schema = load_yaml_file(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        error = errors[0]
        # The schema's description of the key says what the value means (and why a limit is there).
        about = error.schema.get("description") if isinstance(error.schema, dict) else None
        about = f" ({' '.join(about.split())})" if about else ""
        raise ConfigError(f"config key {_where(error)}: {error.message}{about}")
    for name in config["archs"]:
        try:
            arch_spec(config, name)
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(f"config key archs.{name}: {err}") from None
    for study, spec in config["studies"].items():
        for key, section in (("archs", "archs"), ("optimizers", "optimizers")):
            for name in spec[key]:
                if name not in config[section]:
                    raise ConfigError(
                        f"config key studies.{study}.{key}: {name!r} is not defined under '{section}' "
                        f"(defined: {', '.join(config[section])})"
                    )
        if "epochs" in spec and "steps" in spec:
            raise ConfigError(f"config key studies.{study}: give a budget of `epochs` or of `steps`, not both")
    evaluation = config["landscape"]["evaluation"]
    if evaluation["points_per_pass"] > 1 and evaluation["bn"] == "recompute":
        raise ConfigError(
            "config key landscape.evaluation.points_per_pass: must be 1 with bn 'recompute' "
            "(BN statistics are re-estimated point by point)"
        )
    runs = {run.id for run in all_runs(config)}
    for run_id in config["scale_invariance"]["runs"]:
        if run_id not in runs:
            raise ConfigError(f"config key scale_invariance.runs: {run_id!r} is not a run of any study")
        if "library" in config["archs"][run_id.split("/")[0]] or "module" in config["archs"][run_id.split("/")[0]]:
            raise ConfigError(
                f"config key scale_invariance.runs: {run_id!r} is not a built-in U-Net; the check rescales "
                "the U-Net's conv -> batch norm blocks"
            )
    for name, spec in config.get("external", {}).items():
        if spec["arch"] not in config["archs"]:
            raise ConfigError(
                f"config key external.{name}.arch: {spec['arch']!r} is not defined under 'archs' "
                f"(defined: {', '.join(config['archs'])})"
            )
        if not Path(spec["checkpoint"]).is_file():
            raise ConfigError(f"config key external.{name}.checkpoint: file {spec['checkpoint']} not found")
    if config["data"]["source"] in ("isic", "folder"):
        for key in ("images_dir", "masks_dir"):
            if not config["data"].get(key):
                raise ConfigError(f"config key data.{key}: required when data.source is '{config['data']['source']}'")
    check_config(config)


def check_config(config: dict) -> None:
    """Every check below, in the order a user would fix them."""
    check_finite(config)
    for key in AXES:
        check_axis(key, lookup(config, key))
    check_interpolation_path(INTERPOLATION, lookup(config, INTERPOLATION))
    check_surface_chunks(config)
    check_run_ids(config)
    check_study_names(config)
    check_trajectory_checkpoints(config)
    check_curvature(config)
    images, heldout = dataset_images(config)
    check_models_fit_images(config)
    check_evaluation_subset(config, images, heldout)
    check_training_subsets(config, images)


def check_training_subsets(config: dict, images: int) -> None:
    """A study's training subsets may hold at most the data set's training images."""
    for study, spec in config["studies"].items():
        for size in spec.get("train_size", []):
            if size > images:
                raise ConfigError(
                    f"config key studies.{study}.train_size: {size} training images asked for, but the data set "
                    f"has {images}; use at most {images}"
                )


def lookup(config: dict, key: str):
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def check_finite(value, key: str = "") -> None:
    """No NaN or infinity anywhere (YAML's .nan and .inf pass a schema's "type: number")."""
    if isinstance(value, dict):
        for name, item in value.items():
            check_finite(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for k, item in enumerate(value):
            check_finite(item, f"{key}[{k}]")
    elif isinstance(value, float) and not np.isfinite(value):
        raise ConfigError(f"config key {key}: {value} is not a finite number")


def _grid(key: str, spec) -> np.ndarray:
    lo, hi, num = spec
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ConfigError(f"config key {key}: min and max must be finite numbers, got {spec}")
    if not lo < hi:
        raise ConfigError(f"config key {key}: min must be less than max, got [min, max, num] = {spec}")
    return np.linspace(lo, hi, num)


def _index_of(grid: np.ndarray, value: float) -> int | None:
    """Index of the grid point equal to `value` up to np.linspace's rounding, or None."""
    tolerance = 1e-9 * max(float(np.abs(grid).max()), 1.0)
    k = int(np.argmin(np.abs(grid - value)))
    return k if abs(grid[k] - value) <= tolerance else None


def _suggestion(spec, points: tuple[float, ...]) -> str:
    """A num on the same range whose grid holds every one of `points`, as a hint, or ""."""
    lo, hi, num = spec
    if not all(lo <= p <= hi for p in points):
        return f"; the range [{lo:g}, {hi:g}] does not even reach {', '.join(f'{p:g}' for p in points)}"
    for candidate in range(max(num, 3), 10 * num + 100):
        grid = np.linspace(lo, hi, candidate)
        if all(_index_of(grid, p) is not None for p in points):
            return f", e.g. [{lo:g}, {hi:g}, {candidate}]"
    return ""


def check_axis(key: str, spec) -> None:
    """An axis through the trained weights: min < max, num >= 3, 0 a grid point.

    num >= 3: roughness (a three-point second difference) needs a point on each side of one,
    and contour figures need more than one point per axis. 0 is the trained model: sharpness,
    basin width and the figures' star are measured from it.
    """
    num = spec[2]
    if num < 3:
        raise ConfigError(
            f"config key {key}: num must be at least 3 (got {num}): roughness needs a point on "
            "each side of a point, and a figure needs more than one point per axis"
        )
    grid = _grid(key, spec)
    if _index_of(grid, 0.0) is None:
        nearest = grid[np.argmin(np.abs(grid))]
        raise ConfigError(
            f"config key {key}: {spec} has no grid point at 0 (nearest is {nearest:.3g}); the trained "
            "model sits at 0 and the landscape numbers are measured from it: use a grid with 0 as "
            f"one of its points (an odd num on a symmetric range){_suggestion(spec, (0.0,))}"
        )


def check_interpolation_path(key: str, spec) -> None:
    """t of theta(t) = (1 - t) A + t B: min < max, and t = 0 (A) and t = 1 (B) are grid points."""
    grid = _grid(key, spec)
    for end, name in ((0.0, "A"), (1.0, "B")):
        if _index_of(grid, end) is None:
            raise ConfigError(
                f"config key {key}: {spec} has no point t = {end:g} (the path's end {name}, "
                "theta(t) = (1 - t) A + t B): choose min, max and num so that 0 and 1 are grid "
                f"points{_suggestion(spec, (0.0, 1.0))}"
            )


def check_surface_chunks(config: dict) -> None:
    """Each chunk of a surface evaluates a contiguous part of its grid: more chunks than grid
    points would start jobs with no point to evaluate."""
    plane = config["landscape"]["plane"]
    nx, ny, chunks = plane["x"][2], plane["y"][2], plane["chunks"]
    if chunks > nx * ny:
        raise ConfigError(
            f"config key landscape.plane.chunks: {chunks} chunks for a {nx}×{ny} grid of {nx * ny} "
            f"points (landscape.plane.x, .y) would leave {chunks - nx * ny} chunk jobs with no point "
            f"to evaluate; use at most {nx * ny}"
        )


def check_run_ids(config: dict) -> None:
    """Two configured runs must never share a run id (its noise text keeps 6 digits)."""
    runs_by_id: dict[str, dict] = defaultdict(dict)  # id -> run -> studies
    for study in config["studies"]:
        for run in study_runs(config, study):
            runs_by_id[run.id].setdefault(run, []).append(study)
    for run_id, runs in runs_by_id.items():
        if len(runs) > 1:
            (a, studies_a), (b, studies_b) = sorted(runs.items(), key=lambda item: item[0].order)[:2]
            if a.noise == b.noise:  # the same id from another factor: a learning rate
                raise ConfigError(
                    f"config key studies.{studies_b[0]}.lr: learning rates {a.lr!r} (studies {', '.join(studies_a)}) "
                    f"and {b.lr!r} (studies {', '.join(studies_b)}) both give the run id {run_id}: run ids keep "
                    "6 significant digits of a learning rate; make them differ within 6 significant digits"
                )
            raise ConfigError(
                f"config key studies.{studies_b[0]}.noise: noise levels {a.noise!r} "
                f"(studies {', '.join(studies_a)}) and {b.noise!r} (studies {', '.join(studies_b)}) "
                f"both give the run id {run_id}: run ids keep 6 significant digits of a noise "
                "level, so one id would stand for two trainings; make the levels differ within "
                "6 significant digits, or use the same value"
            )


def check_study_names(config: dict) -> None:
    """No two studies (or a study and the workflow) may write the same figure."""
    owner = {name: "the workflow's own figure" for name in WORKFLOW_FIGURES}
    for study in config["studies"]:
        for suffix in STUDY_FIGURES:
            name = study + suffix
            if name in owner:
                raise ConfigError(
                    f"config key studies.{study}: would write results/figures/{name}.png, which is "
                    f"{owner[name]}; rename the study"
                )
            owner[name] = f"study {study}'s"
    # A study named like another's figure ("seeds_landscape") is caught whichever comes first.


def saved_epochs(epochs: int, save_every: int) -> list[int]:
    """Epochs whose checkpoint training saves: 0, every save_every-th, and the last."""
    return [0] + [e for e in range(1, epochs + 1) if e % save_every == 0 or e == epochs]


def check_trajectory_checkpoints(config: dict) -> None:
    training = config["training"]
    saved = saved_epochs(training["epochs"], training["save_every"])
    if len(saved) < PCA_CHECKPOINTS:
        raise ConfigError(
            f"config key training.save_every: epochs {training['epochs']} with save_every "
            f"{training['save_every']} save {len(saved)} checkpoints (epochs {saved}); the PCA "
            f"trajectory of every run needs at least {PCA_CHECKPOINTS}: train longer or save more often"
        )


def check_curvature(config: dict) -> None:
    curvature = config["curvature"]
    if curvature["top_k"] >= curvature["max_iter"]:
        raise ConfigError(
            f"config key curvature.top_k: {curvature['top_k']} eigenvalues need max_iter > top_k "
            f"(max_iter is {curvature['max_iter']}): one Lanczos run of at most max_iter steps "
            "gives at most max_iter eigenvalue estimates, and it must give the top_k largest "
            "and the smallest"
        )


def dataset_images(config: dict) -> tuple[int, int]:
    """How many training and held-out images the configured data set will hold, known without building it."""
    data = config["data"]
    if data["source"] == "synthetic":
        from unetscape.data.prepare import SYNTHETIC_DEFAULTS

        num, held = data.get("num_images"), data.get("heldout")
        return (SYNTHETIC_DEFAULTS["num_images"] if num is None else num), (held or 0)
    return folder_images(data)


def folder_images(data: dict) -> tuple[int, int]:
    """Count the images of a folder source (ISIC's too) from the folder listings, with every
    image paired with its mask and every mask with its image, and check the limit and split
    against them."""
    count = count_folder(data, "images_dir", "masks_dir", data.get("num_images"))
    limit = data.get("num_images")
    if limit is not None and limit > count:
        raise ConfigError(
            f"config key data.num_images: {limit} images asked for, but data.images_dir "
            f"({data['images_dir']}) holds {count}; use null for all of them"
        )
    count = count if limit is None else limit
    folders = [key for key in ("heldout_images_dir", "heldout_masks_dir") if data.get(key) is not None]
    held = data.get("heldout") or 0
    if len(folders) == 1:
        other = ({"heldout_images_dir", "heldout_masks_dir"} - set(folders)).pop()
        raise ConfigError(f"config key data.{other}: needed with data.{folders[0]} (the held-out images and their masks)")
    if folders:
        if held:
            raise ConfigError(
                f"config key data.heldout: {held}, but data.heldout_images_dir names the held-out folder; "
                "set heldout to 0 (or drop the folders for a seeded split of data.images_dir)"
            )
        return count, count_folder(data, "heldout_images_dir", "heldout_masks_dir", None)
    if held >= count:
        raise ConfigError(
            f"config key data.heldout: a split of {held} held-out images from the {count} of data.images_dir "
            "leaves none to train on"
        )
    return count - held, held


def count_folder(data: dict, images_key: str, masks_key: str, limit: int | None) -> int:
    """The images of one folder pair (all of them; the pairs of the first `limit` checked)."""
    from unetscape.data.folder import find_pairs, paired_ids
    from unetscape.data.prepare import naming
    from unetscape.data.store import DatasetError

    for key in (images_key, masks_key):
        if not Path(data[key]).is_dir():
            raise ConfigError(f"config key data.{key}: folder {data[key]} not found")
    try:
        rule = naming(data)
    except DatasetError as err:
        raise ConfigError(f"config key {err}") from None
    try:
        count = len(find_pairs(data[images_key], data[masks_key], rule)[0])
    except DatasetError as err:
        # A file without its partner, a second file for one id, or no images at all: the key of
        # the folder the named file lies in.
        named = Path(str(err).split(": ")[0])
        in_masks = named.parent == Path(data[masks_key]) and Path(data[masks_key]) != Path(data[images_key])
        key = masks_key if in_masks or "mask without an image" in str(err) or "share this folder" in str(err) \
            else images_key
        raise ConfigError(f"config key data.{key}: {err}") from None
    if limit is not None and limit > count:
        return count  # the caller names data.num_images
    try:
        paired_ids(data[images_key], data[masks_key], limit, rule)
    except DatasetError as err:
        raise ConfigError(f"config key data.{masks_key}: {err}") from None
    return count



def _arch_key(config: dict, arch: str, key: str) -> str:
    """The dotted key an arch's value comes from: its own, the shared `model`, or the default."""
    if key in config["archs"][arch]:
        return f"archs.{arch}.{key}"
    return f"model.{key}" if key in config.get("model", {}) else f"model.{key} (default)"


def check_models_fit_images(config: dict) -> None:
    """Every arch takes images of data.size with the data's channels: the built-in U-Net's
    in_channels and its depth 2x poolings; a MONAI or smp network's library installed (its
    output shape is checked when a job first builds it)."""
    from unetscape.models.registry import ModelSpecError, import_library, model_kind

    size = config["data"]["size"]
    channels = data_channels(config)
    kind = "RGB" if channels == 3 else "grayscale"
    for arch in config["archs"]:
        spec = arch_spec(config, arch, channels)
        if model_kind(spec) == "library":
            try:
                import_library(spec["library"], load=False)
            except ModelSpecError as err:
                raise ConfigError(f"config key archs.{arch}.library: {err}") from None
        if model_kind(spec) != "unet":
            continue
        if spec["in_channels"] != channels:
            raise ConfigError(
                f"config key {_arch_key(config, arch, 'in_channels')}: arch {arch} takes "
                f"{spec['in_channels']} input channels, but the images are {kind} ({channels}); "
                "leave in_channels out to take it from the data"
            )
        depth = spec["depth"]
        if size % 2**depth:
            raise ConfigError(
                f"config key {_arch_key(config, arch, 'depth')}: arch {arch} has depth {depth}, which "
                f"needs data.size divisible by 2^{depth} = {2**depth} (got {size}): each level halves "
                "the image and the up-sampling path must give back exactly the skip's size"
            )


def check_evaluation_subset(config: dict, images: int, heldout: int) -> None:
    subset = config["landscape"]["evaluation"]["subset"]
    if subset is not None and subset > images:
        raise ConfigError(
            f"config key landscape.evaluation.subset: {subset} evaluation images asked for, but "
            f"the data set has {images}; use at most {images}, or null for all"
        )
    held = config["landscape"]["evaluation"].get("heldout_subset")
    if held and held > heldout:
        source = "data.heldout" if config["data"]["source"] == "synthetic" else "the data set's held-out part"
        raise ConfigError(
            f"config key landscape.evaluation.heldout_subset: {held} held-out images asked for, but "
            f"{source} has {heldout}; use at most {heldout}, 0 for none, or null for all"
        )


def main(argv: list[str]) -> int:
    """Check each config file as the workflow does: strict YAML, schema, these constraints."""
    schema = Path(__file__).resolve().parents[3] / "config" / "schema" / "config.schema.yaml"
    failed = 0
    for path in argv:
        try:
            validate_config(load_yaml_file(path), schema)
        except (YamlError, ConfigError) as err:
            print(f"{path}: {err}" if isinstance(err, ConfigError) else err, file=sys.stderr)
            failed = 1
        else:
            print(f"{path}: ok")
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
