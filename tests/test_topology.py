"""Basins of a surface (0-dimensional sublevel-set persistence) against a plain union-find,
closed forms and sublevel-set component counts."""

import io
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import ndimage  # noqa: E402

from unetscape.measures.topology import persistence_metrics, sublevel_persistence  # noqa: E402
from unetscape.plots.topology import draw_persistence_diagram  # noqa: E402

PLATEAU = 1.0
# (centre x, centre y, depth): separated wells of different depths on a 41 x 41 grid of [-1, 1]^2.
WELLS = [(-0.5, -0.45, 1.0), (0.5, 0.05, 0.7), (-0.35, 0.6, 0.4)]
WIDTH = 0.2  # wide enough that the wells merge well below the plateau


# --------------------------------------------------------------------------------------------
# an independent reference: union-find over the grid, point by point


def union_find_persistence(loss) -> np.ndarray:
    """0-dimensional sublevel-set persistence the textbook way (Edelsbrunner & Harer, ch. VII).

    Points are added in order of height (non-finite ones as +inf, last); a point with no
    added 4-neighbour starts a component born at its height; a point that touches several
    components joins them, and every one but the oldest (lowest birth) dies at its height.
    Components left at the end never die. Pairs with death == birth and components born at
    +inf are dropped. Returned sorted by (birth, death).
    """
    h = np.atleast_2d(np.asarray(loss, dtype=np.float64))
    h = np.where(np.isfinite(h), h, np.inf)
    rows, cols = h.shape
    parent: dict = {}
    birth: dict = {}

    def find(p):
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    pairs = []
    for p in sorted(np.ndindex(rows, cols), key=lambda p: (h[p], p)):
        i, j = p
        neighbours = [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]
        roots = {find(q) for q in neighbours if q in parent}
        parent[p] = p
        birth[p] = h[p]
        if not roots:
            continue
        elder = min(roots, key=lambda r: (birth[r], r))
        for r in roots - {elder}:
            pairs.append((birth[r], h[p]))
            parent[r] = elder
        parent[p] = elder
    pairs += [(birth[r], math.inf) for r in {find(p) for p in parent}]
    pairs = np.array([(b, d) for b, d in pairs if math.isfinite(b) and d > b]).reshape(-1, 2)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def by_birth(pairs: np.ndarray) -> np.ndarray:
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def assert_same_pairs(found: np.ndarray, expected: np.ndarray) -> None:
    found, expected = by_birth(found), by_birth(expected)
    assert found.shape == expected.shape
    np.testing.assert_array_equal(np.isinf(found), np.isinf(expected))
    finite = np.isfinite(found)
    np.testing.assert_allclose(found[finite], expected[finite], rtol=0, atol=1e-12)


def grid(n=41):
    x = np.linspace(-1.0, 1.0, n)
    return np.meshgrid(x, x, indexing="ij")


def wells_surface(k: int, n: int = 41) -> np.ndarray:
    """PLATEAU minus k Gaussian wells, loss[i, j] = L(x[i], y[j])."""
    x, y = grid(n)
    loss = np.full(x.shape, PLATEAU)
    for cx, cy, depth in WELLS[:k]:
        loss -= depth * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * WIDTH**2))
    return loss


def well_floors(loss: np.ndarray, k: int) -> list[float]:
    """The lowest grid value within 1.5 widths of each well's centre."""
    x, y = grid(loss.shape[0])
    return [float(loss[np.hypot(x - cx, y - cy) < 1.5 * WIDTH].min()) for cx, cy, _ in WELLS[:k]]


def alive_at(pairs: np.ndarray, level: float) -> int:
    return int(((pairs[:, 0] <= level) & (level < pairs[:, 1])).sum())


# --------------------------------------------------------------------------------------------
# wells on a plateau


@pytest.mark.parametrize("k", [1, 2, 3])
def test_k_wells_make_k_basins_with_the_union_find_pairs(k):
    loss = wells_surface(k)
    pairs = sublevel_persistence(loss)
    assert_same_pairs(pairs, union_find_persistence(loss))

    metrics = persistence_metrics(loss, threshold=0.03)
    assert metrics["basins"] == k
    # The counted basins start at the wells' floors, deepest first; each shallower well
    # merges once, below the plateau and above its own floor.
    floors = well_floors(loss, k)
    np.testing.assert_array_equal(pairs[:k, 0], floors)
    assert pairs[0, 1] == math.inf
    merges = pairs[1:k, 1]
    assert metrics["merge_heights"] == sorted(merges.tolist())
    assert all(floor < m < PLATEAU for floor, m in zip(floors[1:], merges))
    # The reference's own merge heights of its deep classes are the same numbers.
    reference = union_find_persistence(loss)
    deep = reference[(reference[:, 1] - reference[:, 0] > 0.03 * np.ptp(loss)) & np.isfinite(reference[:, 1])]
    np.testing.assert_allclose(metrics["merge_heights"], np.sort(deep[:, 1]), rtol=0, atol=1e-12)


def test_pairs_count_the_pieces_of_every_sublevel_set():
    # A rugged surface with many classes, ties (rounded values) and missing points: at every
    # level the classes alive are the 4-connected pieces of {L <= level} (SciPy's labelling).
    rng = np.random.default_rng(7)
    loss = np.round(wells_surface(3) + 0.05 * rng.standard_normal((41, 41)), 2)
    loss[rng.random(loss.shape) < 0.05] = np.nan
    pairs = sublevel_persistence(loss)
    assert len(pairs) > 20
    assert_same_pairs(pairs, union_find_persistence(loss))
    cross = ndimage.generate_binary_structure(2, 1)  # 4-connectivity
    for level in np.unique(loss[np.isfinite(loss)]):
        _, pieces = ndimage.label(loss <= level, structure=cross)  # NaN <= level is False
        assert alive_at(pairs, level) == pieces


def test_pairs_are_sorted_by_persistence_essential_first():
    rng = np.random.default_rng(3)
    pairs = sublevel_persistence(rng.standard_normal((15, 17)))
    persistence = pairs[:, 1] - pairs[:, 0]
    assert persistence[0] == math.inf and np.isfinite(persistence[1:]).all()
    assert np.all(np.diff(persistence[1:]) <= 0)


# --------------------------------------------------------------------------------------------
# closed forms


def two_bowls(x, y, a=0.5, drop=0.2):
    """min((x - a)^2, (x + a)^2 + drop) + y^2: floors 0 at (a, 0) and drop at (-a, 0).

    The bowls meet where (x - a)^2 = (x + a)^2 + drop, at x* = -drop / (4 a), and every path
    between the floors crosses that line at a height >= (x* - a)^2, reached along y = 0: the
    saddle. With a = 0.5 and drop = 0.2, x* = -0.1 and the saddle is 0.36.
    """
    return np.minimum((x - a) ** 2, (x + a) ** 2 + drop) + y**2


def test_two_bowls_merge_at_the_closed_form_saddle():
    x, y = grid()  # step 0.05: x = -0.5, -0.1 and 0.5 are grid points, as is y = 0
    loss = two_bowls(x, y)
    expected = np.array([[0.0, math.inf], [0.2, 0.36]])
    assert_same_pairs(sublevel_persistence(loss), expected)

    span = float(loss.max() - loss.min())  # 1.45, at (x, y) = (-1, +-1)
    metrics = persistence_metrics(loss, threshold=0.1)
    assert metrics["basins"] == 2
    assert metrics["merge_heights"] == pytest.approx([0.36], abs=1e-12)
    assert metrics["total_persistence"] == pytest.approx(0.16 / 1.45, rel=1e-12)
    assert metrics["max_persistence"] == pytest.approx(0.16 / span, rel=1e-12)
    # 0.16 / 1.45 = 0.11: a threshold above it leaves only the deeper bowl.
    assert persistence_metrics(loss, threshold=0.12)["basins"] == 1


def test_a_curve_and_a_one_row_surface_agree_with_the_closed_form():
    x = np.linspace(-1.0, 1.0, 41)
    curve = two_bowls(x, 0.0)
    expected = np.array([[0.0, math.inf], [0.2, 0.36]])
    assert_same_pairs(sublevel_persistence(curve), expected)
    assert_same_pairs(sublevel_persistence(curve[None, :]), expected)
    assert_same_pairs(sublevel_persistence(curve[:, None]), expected)


def test_a_paraboloid_is_one_basin_with_no_persistence():
    x, y = grid(31)
    metrics = persistence_metrics(3.0 * x**2 + 0.5 * y**2, threshold=0.0)
    assert metrics["basins"] == 1
    assert metrics["total_persistence"] == 0.0
    assert metrics["max_persistence"] == 0.0
    assert metrics["merge_heights"] == []


# --------------------------------------------------------------------------------------------
# connectivity and invariance


def test_wells_touching_only_diagonally_are_two_basins():
    loss = np.ones((6, 6))
    loss[2, 2] = 0.0
    loss[3, 3] = 0.2  # a diagonal neighbour of (2, 2)
    assert_same_pairs(sublevel_persistence(loss), np.array([[0.0, math.inf], [0.2, 1.0]]))
    assert persistence_metrics(loss, threshold=0.05)["basins"] == 2
    # A neighbour along an axis joins the first well as it enters: one basin.
    loss[3, 3], loss[2, 3] = 1.0, 0.2
    assert_same_pairs(sublevel_persistence(loss), np.array([[0.0, math.inf]]))
    assert persistence_metrics(loss, threshold=0.05)["basins"] == 1


def test_metrics_do_not_change_under_an_affine_change_of_the_loss():
    loss = wells_surface(3)
    loss = loss + 0.01 * np.sin(9 * np.arange(41))[:, None] * np.cos(7 * np.arange(41))[None, :]
    before = persistence_metrics(loss, threshold=0.03)
    after = persistence_metrics(3.7 * loss - 2.1, threshold=0.03)
    assert before["basins"] == after["basins"] == 3
    assert after["total_persistence"] == pytest.approx(before["total_persistence"], rel=1e-12)
    assert after["max_persistence"] == pytest.approx(before["max_persistence"], rel=1e-12)
    np.testing.assert_allclose(after["merge_heights"], 3.7 * np.array(before["merge_heights"]) - 2.1, atol=1e-12)
    # Which axis comes first does not matter either.
    assert_same_pairs(sublevel_persistence(loss.T), sublevel_persistence(loss))


# --------------------------------------------------------------------------------------------
# missing points


def left_right_wells() -> np.ndarray:
    """Two wells on a 21 x 41 plateau: floor 0 on the left, 0.3 on the right."""
    loss = np.full((21, 41), PLATEAU)
    loss[10, 10] = 0.0
    loss[10, 30] = 0.3
    return loss


def test_a_wall_of_missing_points_never_lets_basins_merge():
    loss = left_right_wells()
    # Rule: a missing point is +inf. A finite wall is crossed at its height ...
    walled = loss.copy()
    walled[:, 20] = 5.0
    assert_same_pairs(sublevel_persistence(walled), np.array([[0.0, math.inf], [0.3, 5.0]]))
    assert persistence_metrics(walled, threshold=0.05)["merge_heights"] == [5.0]
    # ... a missing one never: both basins count and neither has a merge height.
    walled[:, 20] = np.nan
    pairs = sublevel_persistence(walled)
    assert_same_pairs(pairs, np.array([[0.0, math.inf], [0.3, math.inf]]))
    assert_same_pairs(pairs, union_find_persistence(walled))
    metrics = persistence_metrics(walled, threshold=0.05)
    assert metrics["basins"] == 2
    assert metrics["total_persistence"] == 0.0 and metrics["max_persistence"] == 0.0
    assert metrics["merge_heights"] == []
    # With one finite point in it, the basins merge there, at the plateau, not through the wall.
    walled[7, 20] = PLATEAU
    assert_same_pairs(sublevel_persistence(walled), np.array([[0.0, math.inf], [0.3, PLATEAU]]))


def test_missing_points_do_not_start_basins():
    loss = left_right_wells()
    low = loss.copy()
    low[3, 3] = -0.5  # a low finite point is a basin of its own ...
    assert persistence_metrics(low, threshold=0.05)["basins"] == 3
    missing = loss.copy()
    missing[3, 3] = np.nan  # ... a missing one is not
    assert_same_pairs(sublevel_persistence(missing), sublevel_persistence(loss))
    # A missing floor: the well starts at its lowest finite point instead.
    loss[10, 29] = 0.6
    loss[10, 30] = np.nan
    assert_same_pairs(sublevel_persistence(loss), np.array([[0.0, math.inf], [0.6, PLATEAU]]))


@pytest.mark.parametrize(
    "loss",
    [np.full((5, 6), np.nan), np.where(np.eye(5) > 0, 0.4, np.nan), np.full((4, 4), 0.7)],
    ids=["all-missing", "one-finite-value", "flat"],
)
def test_surfaces_without_a_range_give_nan_numbers(loss):
    if np.isfinite(loss).sum() == 0:
        assert sublevel_persistence(loss).shape == (0, 2)
    if np.isfinite(loss).sum() == 1:
        loss[1:] = np.nan
    metrics = persistence_metrics(loss, threshold=0.05)
    assert all(math.isnan(metrics[key]) for key in ("basins", "total_persistence", "max_persistence"))
    assert metrics["merge_heights"] == [] and metrics["threshold"] == 0.05


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("threshold", [-0.01, 1.0, 2, float("nan"), "0.1", None, True])
def test_a_bad_threshold_is_refused_by_name(threshold):
    with pytest.raises(ValueError, match=r"topology\.threshold"):
        persistence_metrics(wells_surface(1, n=9), threshold=threshold)


def test_a_three_dimensional_array_is_refused():
    with pytest.raises(ValueError, match="2-D"):
        sublevel_persistence(np.zeros((3, 3, 3)))


# --------------------------------------------------------------------------------------------
# the diagram


def test_the_diagram_draws_every_class_where_it_belongs():
    loss = wells_surface(2)
    loss[0, ::4] -= 0.02  # dents in the plateau along one edge: shallow classes
    pairs = sublevel_persistence(loss)
    span = float(np.ptp(loss))
    threshold = 0.05
    persistence = pairs[:, 1] - pairs[:, 0]
    shallow = persistence <= threshold * span
    assert shallow.sum() > 3 and (~shallow & np.isfinite(persistence)).sum() == 1

    fig, ax = plt.subplots(figsize=(2.5, 2.5))
    drawn = draw_persistence_diagram(ax, pairs, threshold, span)
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)

    assert_same_pairs(drawn["basins"].get_offsets().data, pairs[~shallow & np.isfinite(persistence)])
    assert_same_pairs(drawn["shallow"].get_offsets().data, pairs[shallow])
    # The class that never merges sits on the top edge, above its birth.
    never = drawn["never"].get_offsets().data
    np.testing.assert_array_equal(never[:, 0], [loss.min()])
    assert never[0, 1] == ax.get_ylim()[1]
    assert drawn["never"].get_label() == "never merges"
    diagonal = np.asarray(drawn["diagonal"].get_xydata())
    np.testing.assert_array_equal(diagonal[:, 0], diagonal[:, 1])
    # The band spans death - birth from 0 to threshold x range.
    band = drawn["band"].get_paths()[0].vertices
    rise = band[:, 1] - band[:, 0]
    assert rise.min() == pytest.approx(0.0, abs=1e-12)
    assert rise.max() == pytest.approx(threshold * span, rel=1e-12)
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"basin", "too shallow", "never merges"}


def test_the_diagram_of_an_empty_surface_says_why():
    fig, ax = plt.subplots(figsize=(2.5, 2.5))
    assert draw_persistence_diagram(ax, sublevel_persistence(np.full((3, 3), np.nan)), 0.05, math.nan) == {}
    assert any("no finite loss" in t.get_text() for t in ax.texts)
    with pytest.raises(ValueError, match=r"\(k, 2\)"):
        draw_persistence_diagram(ax, np.zeros((2, 3)), 0.05, 1.0)
    plt.close(fig)
