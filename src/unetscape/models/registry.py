"""Every network the workflow can train or measure, built from a plain spec dict.

A spec is one of
    the built-in U-Net   {depth, base_width, norm, ...} (`unet.resolve_arch`; the default)
    a MONAI network      {library: monai, name: BasicUNet, kwargs: {...}}  (monai.networks.nets)
    an smp network       {library: smp, name: Unet, kwargs: {encoder_name: resnet18, ...}}
                         (segmentation_models_pytorch; encoder_weights must be null: nothing is
                         downloaded)
    your own nn.Module   {module: path/to/file.py:ClassName, kwargs: {...}}
`resolve_model` fills in what the data decides (input channels; one output logit) and checks the
spec; `build_model` builds the network from the global torch generator (seed it first). The
spec is plain data, so checkpoints that record it still load with `weights_only=True`.

MONAI and smp are optional extras of the package (`pip install -e '.[monai]'`, `'.[smp]'`); a
spec naming one that is not installed gives an error naming the extra.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import torch
from torch import nn

from .spec import arch_factors, describe, model_kind  # noqa: F401 (re-exported)
from .unet import UNet, resolve_arch

LIBRARIES = {
    # library -> (module to import, extra that installs it, keyword of the input channels,
    #             keyword of the output channels)
    "monai": ("monai.networks.nets", "monai", "in_channels", "out_channels"),
    "smp": ("segmentation_models_pytorch", "smp", "in_channels", "classes"),
}
OUT_CHANNELS = 1  # binary segmentation: one logit per pixel
SPEC_KEYS = {"library": ("library", "name", "kwargs"), "module": ("module", "kwargs")}


class ModelSpecError(ValueError):
    """A model spec names something that cannot be built; the message says what and why."""


def resolve_model(spec: dict, channels: int = 3) -> dict:
    """The full spec of a network for images of `channels` channels, checked.

    The built-in U-Net takes `in_channels` from the data unless the spec gives it. A library
    network gets its input channels from the data and one output channel unless `kwargs` gives
    them (MONAI: in_channels, out_channels and spatial_dims 2; smp: in_channels, classes, and
    encoder_weights null); a user's module gets in_channels and out_channels only if its
    constructor takes arguments of those names.
    """
    kind = model_kind(spec)
    if kind == "unet":
        return resolve_arch({"in_channels": channels, **spec})
    unknown = set(spec) - set(SPEC_KEYS[kind])
    if unknown:
        raise ModelSpecError(f"unknown keys {sorted(unknown)} for a {kind} network (allowed: {', '.join(SPEC_KEYS[kind])})")
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ModelSpecError(f"kwargs must be a mapping, got {kwargs!r}")
    if kind == "library":
        library, name = spec["library"], spec.get("name")
        if library not in LIBRARIES:
            raise ModelSpecError(f"unknown library {library!r}; choose from {sorted(LIBRARIES)}")
        if not isinstance(name, str) or not name:
            raise ModelSpecError(f"a {library} network needs its class name under 'name'")
        _, _, in_key, out_key = LIBRARIES[library]
        kwargs = {in_key: channels, out_key: OUT_CHANNELS, **kwargs}
        if library == "monai":
            kwargs.setdefault("spatial_dims", 2)
        else:
            kwargs.setdefault("encoder_weights", None)
            if kwargs["encoder_weights"] is not None:
                raise ModelSpecError(
                    f"kwargs.encoder_weights is {kwargs['encoder_weights']!r}: pretrained weights would be "
                    "downloaded at run time, outside the workflow's inputs; use null (random initial weights "
                    "from the run's seed)"
                )
        return {"library": library, "name": name, "kwargs": kwargs}
    module = spec["module"]
    path, cls = split_module(module)
    accepted = constructor_arguments(load_class(path, cls))
    if accepted is not None:
        for key, value in (("in_channels", channels), ("out_channels", OUT_CHANNELS)):
            if key in accepted:
                kwargs = {key: value, **kwargs}
    return {"module": module, "kwargs": kwargs}


def build_model(spec: dict) -> nn.Module:
    """The network of a resolved spec (`resolve_model`), with its library's own initial weights
    (the built-in U-Net: its `init`). The spec is kept on the model (`model_spec`)."""
    kind = model_kind(spec)
    if kind == "unet":
        return UNet(spec)
    kwargs = dict(spec.get("kwargs") or {})
    if kind == "library":
        cls = library_class(spec["library"], spec["name"])
        what = f"{spec['library']} network {spec['name']}"
    else:
        cls = load_class(*split_module(spec["module"]))
        what = f"module {spec['module']}"
    try:
        model = cls(**kwargs)
    except Exception as err:  # any constructor error: say which network and with what
        raise ModelSpecError(f"{what}({_call(kwargs)}) could not be built: {type(err).__name__}: {err}") from None
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{what} built a {type(model).__name__}, not a torch.nn.Module")
    model.unetscape_spec = {key: spec[key] for key in spec}
    return model


def check_output(model: nn.Module, x: torch.Tensor, what: str = "the model") -> None:
    """A forward pass on images `x` (N, C, H, W) must give one logit per pixel, (N, 1, H, W)."""
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as err:  # a network that cannot take these images says so here, once
        raise ModelSpecError(
            f"{what} cannot take images of shape {tuple(x.shape)}: {type(err).__name__}: {err}"
        ) from None
    finally:
        model.train(was_training)
    expected = (x.shape[0], OUT_CHANNELS, *x.shape[2:])
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelSpecError(
            f"{what} maps images of shape {tuple(x.shape)} to {shape}; a binary segmentation network "
            f"must return one logit per pixel, {expected}"
        )


def model_spec(model: nn.Module) -> dict:
    """The spec a model was built from (the built-in U-Net: its `arch`)."""
    spec = getattr(model, "unetscape_spec", None)
    if spec is None:
        spec = getattr(model, "arch", None)
    if not isinstance(spec, dict):
        raise ModelSpecError(f"a {type(model).__name__} not built by unetscape.models.registry: no spec to record")
    return dict(spec)


def _call(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


# --- optional libraries ---------------------------------------------------------------------


def import_library(library: str, load: bool = True):
    """The module holding a library's networks, or an error naming the extra that installs it.

    `load=False` only checks that it is installed (importing MONAI takes seconds)."""
    module_name, extra, _, _ = LIBRARIES[library]
    top = module_name.split(".")[0]
    if importlib.util.find_spec(top) is None:
        raise ModelSpecError(
            f"library {library!r} needs the package {top!r}, which is not installed: install the "
            f"optional extra with pip install -e '.[{extra}]' (see the README, Your own data, model and loss)"
        )
    if not load:
        return None
    if library == "smp":
        _import_torchvision()
    return importlib.import_module(module_name)


def library_class(library: str, name: str) -> type:
    if library not in LIBRARIES:
        raise ModelSpecError(f"unknown library {library!r}; choose from {sorted(LIBRARIES)}")
    module = import_library(library)
    cls = getattr(module, name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise ModelSpecError(f"{LIBRARIES[library][0]} has no network {name!r}")
    return cls


# The two torchvision operators whose fake kernels torchvision 0.28 registers at import, whether
# or not its compiled operators could be loaded.
_TORCHVISION_OPS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_torchvision_library = None


def _import_torchvision() -> None:
    """Import torchvision (segmentation_models_pytorch and timm need it) beside any torch build.

    PyPI's torchvision wheels are linked against the CUDA build of torch; beside a CPU build
    their compiled operators (detection boxes: nms, roi_align, ...) cannot load. torchvision
    copes with that, except that its import registers a fake kernel for `torchvision::nms`
    unconditionally and stops with "operator torchvision::nms does not exist". The networks
    used here call none of those operators, so their schemas are declared (without kernels:
    calling one still fails) and the import is repeated.
    """
    global _torchvision_library
    try:
        importlib.import_module("torchvision")
        return
    except RuntimeError as err:
        if "torchvision::" not in str(err) or _torchvision_library is not None:
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    import torch

    _torchvision_library = torch.library.Library("torchvision", "DEF")
    for schema in _TORCHVISION_OPS:
        _torchvision_library.define(schema)
    importlib.import_module("torchvision")


# --- a user's own module --------------------------------------------------------------------


def split_module(module: str) -> tuple[Path, str]:
    """`path/to/file.py:ClassName` -> (path, class name)."""
    if not isinstance(module, str) or module.count(":") != 1:
        raise ModelSpecError(f"module must be 'path/to/file.py:ClassName', got {module!r}")
    path, cls = module.split(":")
    if not path.endswith(".py") or not cls.isidentifier():
        raise ModelSpecError(f"module must be 'path/to/file.py:ClassName', got {module!r}")
    return Path(path), cls


def module_file(spec: dict) -> str | None:
    """The Python file a spec builds its network from (a user's module), else None."""
    return str(split_module(spec["module"])[0]) if model_kind(spec) == "module" else None


def load_class(path: Path, name: str) -> type:
    """Class `name` of the Python file `path`, imported once per file content."""
    if not path.is_file():
        raise ModelSpecError(f"module file {path} not found (paths are relative to the working directory)")
    source = path.read_bytes()
    # One module per file content: an edited file is imported afresh, never mixed with the old.
    key = f"unetscape_user_{hashlib.sha256(str(path.resolve()).encode() + source).hexdigest()[:16]}"
    module = sys.modules.get(key)
    if module is None:
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[key]
            raise ModelSpecError(f"{path}: importing it failed: {type(err).__name__}: {err}") from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise ModelSpecError(f"{path} defines no torch.nn.Module subclass {name!r}")
    return cls


def constructor_arguments(cls: type) -> set[str] | None:
    """Names of the constructor's keyword arguments (None if it takes **kwargs: any)."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
