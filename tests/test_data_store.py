"""The dataset file: round trip, validation, and no half-written files."""

import json

import numpy as np
import pytest

from unetscape.data import Dataset, DatasetError, load_dataset, save_dataset


def small_dataset(n=3, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(
        images=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        masks=rng.integers(0, 2, (n, size, size), dtype=np.uint8),
        ids=[f"img_{i}" for i in range(n)],
        provenance={"source": "test", "seed": seed, "nested": {"a": [1, 2.5, None]}},
    )


def test_round_trip_keeps_everything(tmp_path):
    ds = small_dataset()
    path = tmp_path / "data.npz"
    save_dataset(ds, path)
    loaded = load_dataset(path)
    np.testing.assert_array_equal(loaded.images, ds.images)
    np.testing.assert_array_equal(loaded.masks, ds.masks)
    assert loaded.images.dtype == np.uint8 and loaded.masks.dtype == np.uint8
    assert loaded.ids == ds.ids
    assert loaded.provenance == ds.provenance
    assert len(loaded) == 3


def test_save_writes_exactly_the_named_file(tmp_path):
    # np.savez would append ".npz" to a bare filename; the workflow's output path must be kept.
    path = tmp_path / "sub" / "dataset.data"
    save_dataset(small_dataset(), path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["dataset.data"]
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["ids", "images", "masks", "provenance"]
        assert archive["ids"].dtype.kind == "U"
        assert archive["provenance"].shape == ()
        assert json.loads(str(archive["provenance"][()]))["source"] == "test"


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    def broken_savez(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(RuntimeError, match="disk full"):
        save_dataset(small_dataset(), tmp_path / "data.npz")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "data.npz"
    save_dataset(small_dataset(seed=1), path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(RuntimeError):
        save_dataset(small_dataset(seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]


def with_fields(**changes):
    ds = small_dataset()
    fields = {"images": ds.images, "masks": ds.masks, "ids": ds.ids, "provenance": ds.provenance}
    fields.update(changes)
    return fields


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"images": np.zeros((3, 8, 8, 3), dtype=np.float32)}, "images must be a uint8"),
        ({"images": [[0]]}, "images must be a uint8"),
        ({"images": np.zeros((3, 8, 8, 4), dtype=np.uint8)}, "N×H×W×C with C 3"),
        ({"images": np.zeros((3, 8, 8), dtype=np.uint8)}, "N×H×W×C with C 3"),
        ({"masks": np.zeros((3, 8, 8), dtype=np.int64)}, "masks must be a uint8"),
        ({"masks": np.zeros((3, 8, 9), dtype=np.uint8)}, "masks must have shape"),
        ({"masks": np.full((3, 8, 8), 255, dtype=np.uint8)}, "only 0 and 1"),
        ({"ids": ["a", "b"]}, "2 ids for 3 images"),
        ({"ids": ["a", "b", 3]}, "list of strings"),
        ({"ids": ("a", "b", "c")}, "list of strings"),
        ({"ids": ["a", "a", "b"]}, "unique"),
        ({"provenance": "synthetic"}, "provenance must be a dict"),
        ({"provenance": {"seed": object()}}, "JSON"),
        (
            {
                "images": np.zeros((0, 8, 8, 3), dtype=np.uint8),
                "masks": np.zeros((0, 8, 8), dtype=np.uint8),
                "ids": [],
            },
            "no images",
        ),
    ],
)
def test_invalid_dataset_is_rejected(changes, message):
    with pytest.raises(DatasetError, match=message):
        Dataset(**with_fields(**changes))


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


def test_load_missing_file_names_it(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(DatasetError, match="absent.npz.*not found"):
        load_dataset(path)


def test_load_garbage_names_the_file(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(DatasetError, match="garbage.npz"):
        load_dataset(path)


def test_load_npy_instead_of_npz(tmp_path):
    path = tmp_path / "array.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(DatasetError, match="array.npz.*not an .npz"):
        load_dataset(path)


def test_load_reports_missing_keys(tmp_path):
    path = tmp_path / "partial.npz"
    with open(path, "wb") as f:
        np.savez(f, images=np.zeros((1, 4, 4, 3), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"partial.npz.*missing keys.*masks"):
        load_dataset(path)


def write_npz(path, **overrides):
    ds = small_dataset()
    arrays = {
        "images": ds.images,
        "masks": ds.masks,
        "ids": np.array(ds.ids),
        "provenance": np.array(json.dumps(ds.provenance)),
    }
    arrays.update(overrides)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"images": np.zeros((3, 8, 8, 3), dtype=np.float64)}, "images must be a uint8"),
        ({"masks": np.full((3, 8, 8), 2, dtype=np.uint8)}, "only 0 and 1"),
        ({"ids": np.arange(3)}, "'ids' must be a 1-D unicode array"),
        ({"ids": np.array(["a", None, "c"], dtype=object)}, "'ids' cannot be read without pickle"),
        ({"provenance": np.array("{not json")}, "'provenance' is not valid JSON"),
        ({"provenance": np.array(["{}"])}, "'provenance' must be a 0-d"),
    ],
)
def test_load_rejects_bad_contents_naming_file_and_key(tmp_path, overrides, message):
    path = tmp_path / "bad.npz"
    write_npz(path, **overrides)
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset(path)
    assert "bad.npz" in str(err.value)
