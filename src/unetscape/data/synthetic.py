"""Synthetic dermoscopy-like images with exact lesion masks.

The workflow must run end to end without downloading ISIC, and a U-Net trained here should meet
the difficulties it meets on real dermoscopy: skin tones from light to darker skin, uneven
lighting, one irregular pigmented lesion with a soft edge and mottled colour (some of it barely
darker than the skin), hair strands crossing the lesion that are not part of the mask, and the
dark corners of a circular dermoscope field.

Coordinates are normalised to [-1, 1] across the image, so a scene does not depend on the
output size, only its sampling does. Each image is rendered at SUPERSAMPLE× resolution and
box-averaged down, so edges are anti-aliased like a camera's; the mask is the analytic lesion
region sampled at the centres of the output pixels.

Every layer multiplies the light: a pixel's colour is skin tone × lesion pigment × (texture ×
illumination × hair × dermoscope field). So hair and the dark field can only darken an image,
and turning them off changes nothing else.
"""

from __future__ import annotations

import functools

import numpy as np

from .store import Dataset, DatasetError

GENERATOR_VERSION = "synthetic-v1"
SUPERSAMPLE = 2

# Lesion area as a fraction of the image, checked on a fixed grid so that the scene of image i
# is the same at every output size.
AREA_RANGE = (0.06, 0.42)
AREA_CHECK_SIZE = 64

# Skin tones (RGB) from light to darker skin; each image draws a tone between neighbours.
SKIN_TONES = np.array(
    [
        [238, 200, 182],
        [224, 172, 150],
        [200, 144, 116],
        [164, 110, 82],
        [120, 80, 60],
    ],
    dtype=np.float64,
)

# Lesion pigments as fractions of the local skin colour. Being fractions (all < 1), a lesion is
# darker than the skin it sits on whatever the skin tone.
TAN = np.array([0.80, 0.66, 0.58])
LIGHT_BROWN = np.array([0.66, 0.50, 0.42])
MID_BROWN = np.array([0.50, 0.35, 0.28])
DARK_BROWN = np.array([0.36, 0.24, 0.20])
BLACK_BROWN = np.array([0.24, 0.16, 0.14])
BLUE_GREY = np.array([0.52, 0.48, 0.56])
LIGHT_PIGMENTS = (TAN, LIGHT_BROWN, MID_BROWN)
DARK_PIGMENTS = (MID_BROWN, DARK_BROWN, BLACK_BROWN)

# Boundary wobbles k = 2..6: r(θ) = R·(1 + Σ a_k cos(kθ + φ_k)). Consecutive from 2:
# lesion_radius steps k up one at a time.
HARMONICS = np.arange(2, 7)

# Held-out image i comes from SeedSequence(seed, spawn_key=(HELDOUT_STREAM, i)), training image
# i from spawn_key=(i,): spawn keys of different length give unrelated streams.
HELDOUT_STREAM = 1 << 30


def make_synthetic(
    num_images: int = 900,
    size: int = 64,
    seed: int = 0,
    hair: bool = True,
    vignette: bool = True,
    heldout: int = 0,
) -> Dataset:
    """Render `num_images` images of `size`×`size`; image i depends only on (seed, i).

    `heldout` more images form the held-out part, drawn from a stream of their own
    (`HELDOUT_STREAM`), so growing either part leaves the other unchanged.
    """
    for name, value, low in (
        ("num_images", num_images, 1), ("size", size, 8), ("seed", seed, 0), ("heldout", heldout, 0)
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise DatasetError(f"{name} must be an integer >= {low}, got {value!r}")
    for name, value in (("hair", hair), ("vignette", vignette)):
        if not isinstance(value, (bool, np.bool_)):
            raise DatasetError(f"{name} must be true or false, got {value!r}")

    images, masks = _render_set(int(seed), range(num_images), int(size), bool(hair), bool(vignette))
    part = None
    if heldout:
        keys = [(HELDOUT_STREAM, i) for i in range(heldout)]
        part = Dataset(
            *_render_set(int(seed), keys, int(size), bool(hair), bool(vignette)),
            ids=[f"synthetic_heldout_{i:06d}" for i in range(heldout)],
            provenance={"part": "heldout"},
        )
    provenance = {
        "source": "synthetic",
        "generator": GENERATOR_VERSION,
        "seed": int(seed),
        "num_images": int(num_images),
        "size": int(size),
        "hair": bool(hair),
        "vignette": bool(vignette),
        "heldout": int(heldout),
        "heldout_stream": f"SeedSequence(seed, spawn_key=({HELDOUT_STREAM}, i))" if heldout else None,
    }
    ids = [f"synthetic_{i:06d}" for i in range(num_images)]
    return Dataset(images=images, masks=masks, ids=ids, provenance=provenance, heldout=part)


def _render_set(seed: int, keys, size: int, hair: bool, vignette: bool) -> tuple[np.ndarray, np.ndarray]:
    keys = list(keys)
    images = np.empty((len(keys), size, size, 3), dtype=np.uint8)
    masks = np.empty((len(keys), size, size), dtype=np.uint8)
    for k, key in enumerate(keys):
        images[k], masks[k] = render_image(seed, key, size, hair, vignette)
    return images, masks


def render_image(
    seed: int, index: int | tuple[int, int], size: int, hair: bool, vignette: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One image (uint8 H×W×3) and its lesion mask (uint8 H×W in {0, 1}).

    `index` i is training image i; (HELDOUT_STREAM, i) is held-out image i.
    """
    # Child `index` of SeedSequence(seed): the same stream however many images are made.
    # One stream per layer keeps skin and lesion identical with hair or vignette turned off.
    spawn_key = index if isinstance(index, tuple) else (index,)
    image_seq = np.random.SeedSequence(seed, spawn_key=spawn_key)
    skin_rng, lesion_rng, hair_rng, vignette_rng, noise_rng = (
        np.random.default_rng(s) for s in image_seq.spawn(5)
    )
    n = size * SUPERSAMPLE
    x, y = coordinate_grid(n)

    skin_tone, shade = draw_skin(skin_rng, n, x, y)
    lesion = draw_lesion(lesion_rng)
    pigment = lesion_pigment(lesion, lesion_rng, n, x, y)
    if hair:
        shade *= hair_transmittance(hair_rng, size, x, y)
    if vignette:
        shade *= dermoscope_field(vignette_rng, x, y)

    # Channel by channel on n×n arrays: numpy is much slower on 3×n×n temporaries (and far
    # slower still broadcasting over a trailing axis of length 3).
    rgb = np.empty((size, size, 3))
    for c in range(3):
        rgb[..., c] = box_downsample(skin_tone[c] * shade * pigment[c])
    rgb += noise_rng.normal(0.0, noise_rng.uniform(1.0, 3.5), rgb.shape)  # sensor noise
    image = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)

    mask = (lesion_radius(lesion, *coordinate_grid(size)) < 1.0).astype(np.uint8)
    return image, mask


def pixel_centres(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n * 2.0 - 1.0


@functools.lru_cache(maxsize=8)
def coordinate_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """x (column) and y (row) of every pixel centre of an n×n image, in [-1, 1]."""
    y, x = np.meshgrid(pixel_centres(n), pixel_centres(n), indexing="ij")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def box_downsample(field: np.ndarray) -> np.ndarray:
    """Average each SUPERSAMPLE×SUPERSAMPLE block of a 2-D array (anti-aliasing)."""
    # Summing strided views is several times faster than reshape(...).mean(axis=...).
    f = SUPERSAMPLE
    return sum(field[i::f, j::f] for i in range(f) for j in range(f)) / (f * f)


def soft_step(z: np.ndarray) -> np.ndarray:
    """A smooth step from 0 to 1 (0.5 at z = 0), shaped like a logistic sigmoid.

    The algebraic form avoids exp/tanh, which would dominate the rendering time; the exact
    shape of a soft edge does not matter for a synthetic image.
    """
    return 0.5 + 0.5 * z / np.sqrt(1.0 + z * z)


@functools.lru_cache(maxsize=32)
def smoothing_matrix(n: int, knots: int) -> np.ndarray:
    """Gaussian interpolation weights from `knots` control points to `n` pixel centres.

    Rows have unit L2 norm, so W @ G @ W.T of standard-normal G is standard normal at every
    pixel without normalising each field.
    """
    centres = np.linspace(-1.25, 1.25, knots)  # past the border so edges are not special
    sigma = 0.7 * (centres[1] - centres[0])
    weights = np.exp(-0.5 * ((pixel_centres(n)[:, None] - centres[None, :]) / sigma) ** 2)
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    weights.setflags(write=False)
    return weights


def smooth_noise(rng: np.random.Generator, n: int, knots: int) -> np.ndarray:
    """Standard-normal low-frequency noise on an n×n grid, about knots/2 blobs across.

    The random draws are knots×knots whatever n is, so a field looks the same at every
    resolution.
    """
    weights = smoothing_matrix(n, knots)
    return weights @ rng.standard_normal((knots, knots)) @ weights.T


def draw_skin(
    rng: np.random.Generator, n: int, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Skin tone (RGB) and shade: skin texture times illumination (n×n)."""
    # Beta(1.3, 2.2) leans towards lighter skin, as in the ISIC archive, without excluding
    # darker tones.
    position = rng.beta(1.3, 2.2) * (len(SKIN_TONES) - 1)
    low = int(position)
    high = min(low + 1, len(SKIN_TONES) - 1)
    tone = SKIN_TONES[low] + (position - low) * (SKIN_TONES[high] - SKIN_TONES[low])
    tone = tone * (1.0 + rng.normal(0.0, 0.03, 3))

    texture = (
        1.0
        + rng.uniform(0.02, 0.06) * smooth_noise(rng, n, 6)
        + rng.uniform(0.01, 0.03) * smooth_noise(rng, n, 16)
    )

    # Dermoscopes light the skin unevenly: a tilt across the field and a soft hotspot.
    angle = rng.uniform(0.0, 2.0 * np.pi)
    tilt = 1.0 + rng.uniform(0.0, 0.15) * (np.cos(angle) * x + np.sin(angle) * y)
    cx, cy = rng.normal(0.0, 0.3, 2)
    hotspot = 1.0 / (1.0 + 0.5 * rng.uniform(0.0, 0.3) * ((x - cx) ** 2 + (y - cy) ** 2))
    shade = rng.uniform(0.92, 1.08) * texture * tilt * hotspot
    return tone, shade


def draw_lesion(rng: np.random.Generator) -> dict:
    """Shape of the one lesion: centre, size, boundary harmonics, stretch, rotation, edge."""
    check_x, check_y = coordinate_grid(AREA_CHECK_SIZE)
    for _ in range(100):
        area = rng.uniform(0.07, 0.40)  # of the image, before clipping at the borders
        amplitudes = rng.uniform(0.0, 0.2, len(HARMONICS)) / HARMONICS**0.7
        # Mean of r(θ)² is R²·(1 + Σ a_k²/2): choose R so the shape has the drawn area.
        radius = np.sqrt(4.0 * area / (np.pi * (1.0 + 0.5 * np.sum(amplitudes**2))))
        lesion = {
            # Mostly central, but large lesions may run off the field as in dermoscopy.
            "centre": np.clip(rng.normal(0.0, 0.2, 2), -0.5, 0.5),
            "radius": radius,
            "amplitudes": amplitudes,
            "phases": rng.uniform(0.0, 2.0 * np.pi, len(HARMONICS)),
            "stretch": rng.uniform(1.0, 1.45),
            "rotation": rng.uniform(0.0, np.pi),
            "edge": rng.uniform(0.02, 0.10),  # soft-edge width, as a fraction of the radius
        }
        fraction = np.mean(lesion_radius(lesion, check_x, check_y) < 1.0)
        if AREA_RANGE[0] <= fraction <= AREA_RANGE[1]:
            return lesion
    raise RuntimeError("no lesion within the area range after 100 draws")  # pragma: no cover


def lesion_radius(lesion: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance from the lesion centre relative to the boundary: < 1 inside, 1 on the edge.

    The boundary is r(θ) = R·(1 + Σ_k a_k cos(kθ + φ_k)) in the lesion's own frame; Σ a_k
    stays below 0.45, so r > 0 and the lesion is one star-shaped region.
    """
    dx = x - lesion["centre"][0]
    dy = y - lesion["centre"][1]
    c, s = np.cos(lesion["rotation"]), np.sin(lesion["rotation"])
    # Rotate into the lesion frame and stretch into an ellipse (area-preserving).
    u = (c * dx + s * dy) / lesion["stretch"]
    v = (-s * dx + c * dy) * lesion["stretch"]
    distance = np.sqrt(u * u + v * v)

    # cos kθ and sin kθ by the angle-addition recurrence from cos θ and sin θ: no
    # trigonometry per pixel.
    cos_1 = u / np.maximum(distance, 1e-12)
    sin_1 = v / np.maximum(distance, 1e-12)
    cos_k, sin_k = cos_1, sin_1
    wobble = np.zeros_like(distance)
    for a, phase in zip(lesion["amplitudes"], lesion["phases"]):  # k = 2, 3, ..., 6
        cos_k, sin_k = cos_k * cos_1 - sin_k * sin_1, sin_k * cos_1 + cos_k * sin_1
        wobble += (a * np.cos(phase)) * cos_k - (a * np.sin(phase)) * sin_k
    return distance / (lesion["radius"] * (1.0 + wobble))


def lesion_pigment(
    lesion: dict, rng: np.random.Generator, n: int, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Factor (3×n×n, ≤ 1) by which the lesion darkens the skin; 1 far outside the lesion."""
    light = LIGHT_PIGMENTS[rng.integers(len(LIGHT_PIGMENTS))]
    dark = DARK_PIGMENTS[rng.integers(len(DARK_PIGMENTS))]
    darkest = np.minimum(dark, MID_BROWN) * rng.uniform(0.6, 0.9)

    # Two browns blended by smooth noise, fine mottling (a stand-in for the pigment network),
    # a darker core or dark blotches, and sometimes blue-grey regression areas.
    mix = soft_step(rng.uniform(2.0, 6.0) * smooth_noise(rng, n, 8) + rng.normal(0.0, 0.8))
    mottling = 1.0 + rng.uniform(0.03, 0.12) * smooth_noise(rng, n, 24)
    rho = lesion_radius(lesion, x, y)
    core = rng.uniform(0.0, 0.8) / (1.0 + np.square(np.square(rho / rng.uniform(0.3, 0.7))))
    blotches = rng.uniform(0.0, 0.7) * soft_step(
        4.0 * (smooth_noise(rng, n, 12) - rng.uniform(0.5, 1.5))
    )
    darkening = np.maximum(core, blotches)
    grey = None
    if rng.random() < 0.2:
        grey = 0.6 * soft_step(4.0 * (smooth_noise(rng, n, 10) - 1.0))

    # Some lesions are barely darker than the skin; that is where segmentation is hard.
    contrast = rng.uniform(0.3, 0.5) if rng.random() < 0.15 else rng.uniform(0.55, 1.0)
    # The soft edge is 0.5 exactly on the mask boundary, so the mask follows the visible edge.
    strength = contrast * soft_step((1.0 - rho) / lesion["edge"])

    pigment = np.empty((3, n, n))
    for c in range(3):
        p = light[c] + mix * (dark[c] - light[c])
        p *= mottling
        p += darkening * (darkest[c] - p)
        if grey is not None:
            p += grey * (BLUE_GREY[c] - p)
        pigment[c] = 1.0 + strength * (p - 1.0)
    return pigment


def hair_transmittance(
    rng: np.random.Generator, size: int, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Fraction of light that passes the hair strands (n×n, 1 where there is no hair)."""
    transmittance = np.ones_like(x)
    if rng.random() >= 0.45:  # most dermoscopy images show no hair
        return transmittance
    pixel = 2.0 / (size * SUPERSAMPLE)  # one supersampled pixel in normalised units
    for _ in range(rng.integers(1, 7)):
        angle = rng.uniform(0.0, np.pi)
        along = np.cos(angle) * x + np.sin(angle) * y
        across = -np.sin(angle) * x + np.cos(angle) * y
        # A gently curved strand: across = offset + b·along² + c·along³ in the strand's frame.
        offset, bend, twist = rng.uniform(-0.9, 0.9), rng.normal(0.0, 0.4), rng.normal(0.0, 0.15)
        start = rng.uniform(-1.6, 0.2)  # strands may begin or end inside the image
        end = start + rng.uniform(0.8, 3.0)
        # 0.3–0.8 % of the image width, but never thinner than 0.6 output pixels, so that
        # hair stays visible in small images.
        half_width = 0.5 * max(rng.uniform(0.006, 0.016), 1.2 / size)
        darkness = rng.uniform(0.65, 0.92)

        along2 = along * along
        slope = 2.0 * bend * along + 3.0 * twist * along2
        distance = np.abs(across - (offset + bend * along2 + twist * along2 * along))
        distance /= np.sqrt(1.0 + slope * slope)  # offset across → distance to the curve
        # Coverage of each supersampled pixel, ramped over one pixel for anti-aliasing.
        coverage = np.clip((half_width - distance) / pixel + 0.5, 0.0, 1.0)
        coverage *= np.clip((along - start) / pixel + 0.5, 0.0, 1.0)
        coverage *= np.clip((end - along) / pixel + 0.5, 0.0, 1.0)
        transmittance *= 1.0 - darkness * coverage
    return transmittance


def dermoscope_field(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Brightness (n×n) of a circular dermoscope field: 1 inside, dark in the corners."""
    if rng.random() >= 0.4:  # most dermoscopy images fill the frame
        return np.ones_like(x)
    cx, cy = rng.normal(0.0, 0.04, 2)
    radius = rng.uniform(0.95, 1.3)  # the corners are at √2 ≈ 1.41
    softness = rng.uniform(0.02, 0.1)
    floor = rng.uniform(0.02, 0.10)
    inside = soft_step((radius - np.sqrt((x - cx) ** 2 + (y - cy) ** 2)) / softness)
    return floor + (1.0 - floor) * inside
