"""Synthetic dermoscopy images: determinism, exact masks, and that they look like lesions."""

from collections import deque

import numpy as np
import pytest

from unetscape.data import DatasetError, make_synthetic, prepare_dataset

N, SIZE = 60, 64


@pytest.fixture(scope="module")
def full():
    return make_synthetic(N, SIZE, seed=11)


@pytest.fixture(scope="module")
def plain():
    """Same scenes as `full` without hair and dermoscope field."""
    return make_synthetic(N, SIZE, seed=11, hair=False, vignette=False)


def luminance(images):
    return images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def grow(region, steps=1):
    """Dilate a boolean image by `steps` 4-neighbour steps."""
    for _ in range(steps):
        padded = np.pad(region, 1)
        region = (
            region | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
        )
    return region


def count_components(mask):
    """Number of 4-connected foreground components (breadth-first flood fill)."""
    seen = np.zeros(mask.shape, dtype=bool)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        seen[start] = True
        queue = deque([start])
        while queue:
            r, c = queue.popleft()
            for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= nr < mask.shape[0] and 0 <= nc < mask.shape[1]:
                    if mask[nr, nc] and not seen[nr, nc]:
                        seen[nr, nc] = True
                        queue.append((nr, nc))
    return count


def test_count_components_sees_two_blobs():
    mask = np.zeros((6, 6), dtype=np.uint8)
    mask[0:2, 0:2] = 1
    mask[3:5, 3:6] = 1
    mask[2, 2] = 1  # touches both only diagonally
    assert count_components(mask) == 3


def test_same_seed_gives_identical_data():
    a = make_synthetic(6, 32, seed=3)
    b = make_synthetic(6, 32, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.ids == b.ids and a.provenance == b.provenance


def test_different_seed_gives_different_data():
    a = make_synthetic(6, 32, seed=3)
    b = make_synthetic(6, 32, seed=4)
    assert not np.array_equal(a.images, b.images)
    assert not np.array_equal(a.masks, b.masks)


def test_image_depends_only_on_seed_and_index():
    few = make_synthetic(3, 32, seed=5)
    more = make_synthetic(7, 32, seed=5)
    np.testing.assert_array_equal(few.images, more.images[:3])
    np.testing.assert_array_equal(few.masks, more.masks[:3])
    assert few.ids == more.ids[:3]


@pytest.mark.parametrize("size", [32, 96])
def test_shapes_dtypes_ids_and_provenance(size):
    ds = make_synthetic(4, size, seed=1, hair=False, vignette=True)
    assert ds.images.shape == (4, size, size, 3) and ds.images.dtype == np.uint8
    assert ds.masks.shape == (4, size, size) and ds.masks.dtype == np.uint8
    assert ds.ids == [f"synthetic_{i:06d}" for i in range(4)]
    assert ds.provenance == {
        "source": "synthetic",
        "generator": "synthetic-v1",
        "seed": 1,
        "num_images": 4,
        "size": size,
        "hair": False,
        "vignette": True,
        "heldout": 0,
        "heldout_stream": None,
    }


def test_each_mask_is_one_lesion_of_plausible_size(full):
    assert set(np.unique(full.masks)) <= {0, 1}
    for mask in full.masks:
        assert count_components(mask) == 1
        assert 0.05 <= mask.mean() <= 0.45
    areas = full.masks.mean(axis=(1, 2))
    assert areas.max() - areas.min() > 0.15  # sizes really vary


def test_lesions_are_not_all_in_the_same_place(full):
    rows, cols = np.indices((SIZE, SIZE))
    centres = np.array([(rows[m == 1].mean(), cols[m == 1].mean()) for m in full.masks])
    assert centres.std(axis=0).min() > 0.05 * SIZE


def test_mask_marks_the_darker_lesion(full):
    lum = luminance(full.images)
    inside = np.array([l[m == 1].mean() for l, m in zip(lum, full.masks)])
    outside = np.array([l[m == 0].mean() for l, m in zip(lum, full.masks)])
    assert np.mean(inside < outside) > 0.9


def test_mask_boundary_is_an_edge_in_the_image(plain, full):
    # The masks do not depend on hair or dermoscope field.
    np.testing.assert_array_equal(plain.masks, full.masks)
    lum = luminance(plain.images)
    for image, mask in zip(lum, plain.masks.astype(bool)):
        gy, gx = np.gradient(image)
        gradient = np.hypot(gx, gy)
        boundary = grow(mask) & grow(~mask)  # pixels on either side of the mask edge
        background = ~grow(mask, 4)
        assert gradient[boundary].mean() > 2.0 * gradient[background].mean()


def test_brightness_rises_across_the_edge(plain):
    # Mean luminance in rings at signed distance -3..+3 pixels from the mask boundary.
    lum = luminance(plain.images)
    profiles = []
    for image, mask in zip(lum, plain.masks.astype(bool)):
        inner = [~grow(~mask, d - 1) & grow(~mask, d) for d in (3, 2, 1)]
        outer = [grow(mask, d) & ~grow(mask, d - 1) for d in (1, 2, 3)]
        profiles.append([image[ring].mean() for ring in inner + outer])
    profile = np.mean(profiles, axis=0)
    assert np.all(np.diff(profile) > 0)
    assert profile[-1] - profile[0] > 20  # a visible step, not a whisper


def test_hair_only_darkens_and_is_not_in_the_mask(full):
    no_hair = make_synthetic(N, SIZE, seed=11, hair=False, vignette=True)
    np.testing.assert_array_equal(full.masks, no_hair.masks)
    # Hair multiplies the light by < 1 and nothing else changes when it is turned off.
    assert np.all(full.images <= no_hair.images)

    darkened = luminance(no_hair.images) - luminance(full.images) > 25
    with_hair = darkened.any(axis=(1, 2))
    assert 0.2 < with_hair.mean() < 0.8  # some images have hair, some do not
    # Hairless images are untouched: hair is the only difference.
    np.testing.assert_array_equal(full.images[~with_hair], no_hair.images[~with_hair])
    # Hair shows on the skin outside the lesion and crosses lesions too...
    hair_outside = [(darkened[i] & (full.masks[i] == 0)).any() for i in np.flatnonzero(with_hair)]
    hair_inside = [(darkened[i] & (full.masks[i] == 1)).any() for i in np.flatnonzero(with_hair)]
    assert np.mean(hair_outside) > 0.8
    assert np.mean(hair_inside) > 0.2
    # ...as thin strands, not as blobs.
    assert darkened[with_hair].mean(axis=(1, 2)).max() < 0.2


def test_dermoscope_field_darkens_corners_only(plain):
    vignetted = make_synthetic(N, SIZE, seed=11, hair=False, vignette=True)
    np.testing.assert_array_equal(vignetted.masks, plain.masks)
    assert np.all(vignetted.images <= plain.images)
    lum_v, lum_p = luminance(vignetted.images), luminance(plain.images)
    corners = (slice(0, 4), slice(0, 4))
    centre = (slice(SIZE // 2 - 4, SIZE // 2 + 4),) * 2
    corner_drop = (lum_p - lum_v)[:, corners[0], corners[1]].mean(axis=(1, 2))
    centre_drop = (lum_p - lum_v)[:, centre[0], centre[1]].mean(axis=(1, 2))
    has_field = corner_drop > 30
    assert 0.2 < has_field.mean() < 0.8
    assert centre_drop.max() < 3


def test_invalid_arguments_raise_dataset_error():
    for kwargs in ({"num_images": 0}, {"size": "64"}, {"seed": -1}, {"hair": "yes"}):
        with pytest.raises(DatasetError, match=next(iter(kwargs))):
            make_synthetic(**kwargs)


def test_prepare_synthetic_uses_config_and_defaults():
    ds = prepare_dataset({"source": "synthetic", "num_images": 3, "size": 32, "seed": 2})
    assert ds.provenance == {
        "source": "synthetic",
        "generator": "synthetic-v1",
        "seed": 2,
        "num_images": 3,
        "size": 32,
        "hair": True,
        "vignette": True,
        "heldout": 0,
        "heldout_stream": None,
    }
    np.testing.assert_array_equal(ds.images, make_synthetic(3, 32, seed=2).images)
    with pytest.raises(DatasetError, match="data.size"):
        prepare_dataset({"source": "synthetic", "num_images": 2, "size": 0})


def test_heldout_part_is_disjoint_deterministic_and_independent_of_the_training_part():
    a = make_synthetic(num_images=12, size=16, seed=3, heldout=5)
    b = make_synthetic(num_images=4, size=16, seed=3, heldout=7)
    assert a.heldout.images.shape == (5, 16, 16, 3) and a.heldout.masks.shape == (5, 16, 16)
    # growing either part leaves the other unchanged
    assert np.array_equal(a.images[:4], b.images) and np.array_equal(a.heldout.images, b.heldout.images[:5])
    # no held-out image is a training image
    train = a.images.reshape(len(a.images), -1).astype(int)
    held = a.heldout.images.reshape(len(a.heldout.images), -1).astype(int)
    assert np.abs(train[:, None] - held[None]).sum(-1).min() > 0
    assert not set(a.ids) & set(a.heldout.ids)
    assert a.provenance["heldout"] == 5
    again = make_synthetic(num_images=12, size=16, seed=3, heldout=5)
    assert np.array_equal(again.heldout.images, a.heldout.images) and np.array_equal(again.heldout.masks, a.heldout.masks)


def test_heldout_part_survives_the_file_round_trip(tmp_path):
    from unetscape.data import load_dataset, save_dataset

    ds = make_synthetic(num_images=6, size=16, seed=0, heldout=3)
    save_dataset(ds, tmp_path / "d.npz")
    back = load_dataset(tmp_path / "d.npz")
    assert np.array_equal(back.heldout.images, ds.heldout.images) and back.heldout.ids == ds.heldout.ids
    plain = make_synthetic(num_images=6, size=16, seed=0)
    save_dataset(plain, tmp_path / "p.npz")
    assert load_dataset(tmp_path / "p.npz").heldout is None
