"""The ParaView export, read back by a VTK XML reader written here (ElementTree for the
header, struct for the raw appended arrays), not by the library that wrote it."""

import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from unetscape.landscape import SurfaceGrid, merge_chunks, read_surface, write_chunk
from unetscape.landscape.paraview import HIDDEN_CELL, HIDDEN_POINT, write_vts

VTK_TYPES = {"Float64": "d", "Float32": "f", "UInt8": "B", "Int32": "i", "Int64": "q", "UInt64": "Q"}


def read_vts(path):
    """(extent, {section: {name: array}}) of an appended-raw .vts file."""
    raw = path.read_bytes()
    start = raw.index(b"<AppendedData")
    data = raw.index(b"_", raw.index(b">", start)) + 1  # binary data follow the underscore
    header = ET.fromstring(raw[:start] + b"</VTKFile>")
    assert header.get("type") == "StructuredGrid" and header.get("header_type") == "UInt64"
    order = "<" if header.get("byte_order") == "LittleEndian" else ">"
    piece = header.find("StructuredGrid/Piece")
    extent = [int(v) for v in piece.get("Extent").split()]
    arrays = {}
    for section in ("Points", "PointData", "CellData"):
        arrays[section] = {}
        for array in piece.find(section):
            assert array.get("format") == "appended"
            at = data + int(array.get("offset"))
            (size,) = struct.unpack(order + "Q", raw[at : at + 8])
            code = VTK_TYPES[array.get("type")]
            count = size // struct.calcsize(code)
            values = np.array(struct.unpack(f"{order}{count}{code}", raw[at + 8 : at + 8 + size]))
            components = int(array.get("NumberOfComponents", "1"))
            arrays[section][array.get("Name")] = values.reshape(-1, components) if components > 1 else values
    return extent, arrays


def known_surface(tmp_path, missing=()):
    grid = SurfaceGrid.from_config([-1, 1, 5], [0, 1.5, 4])  # not square
    points = grid.points()
    loss = np.array([0.2 + (x - 0.3) ** 2 + 0.5 * y for x, y in map(grid.coordinates, points)])
    for point in missing:
        loss[points.index(point)] = np.nan
    values = {"loss": loss, "dice": 1 - loss, "iou": 1 - 2 * loss}
    write_chunk(tmp_path / "chunk.h5", grid, points, values, {"direction_seed": 0})
    merge_chunks([tmp_path / "chunk.h5"], grid, tmp_path / "surface.h5", {"direction_seed": 0})
    return grid, read_surface(tmp_path / "surface.h5")


def test_export_holds_every_point_with_its_values(tmp_path):
    grid, surface = known_surface(tmp_path, missing=[(4, 3)])
    write_vts(surface, tmp_path / "surface.vts")
    extent, arrays = read_vts(tmp_path / "surface.vts")
    nx, ny = len(grid.x), len(grid.y)
    assert extent == [0, nx - 1, 0, ny - 1, 0, 0]
    points, data, cells = arrays["Points"]["points"], arrays["PointData"], arrays["CellData"]
    assert points.shape == (nx * ny, 3)
    for i in range(nx):
        for j in range(ny):
            k = i + nx * j  # VTK's point order: x fastest
            loss = 0.2 + (grid.x[i] - 0.3) ** 2 + 0.5 * grid.y[j]
            if (i, j) == (4, 3):
                assert np.isnan(points[k, 2]) and np.isnan(data["train_loss"][k])
                assert data["vtkGhostType"][k] == HIDDEN_POINT
                continue
            np.testing.assert_allclose(points[k], [grid.x[i], grid.y[j], loss], rtol=1e-12)
            assert data["train_loss"][k] == pytest.approx(loss, rel=1e-12)
            assert data["dice"][k] == pytest.approx(1 - loss, rel=1e-12)
            assert data["iou"][k] == pytest.approx(1 - 2 * loss, rel=1e-12)
            assert data["train_acc"][k] == pytest.approx(100 * (1 - loss), rel=1e-12)
            assert data["vtkGhostType"][k] == 0
    # cells: the mean of their four corners (h52vtp.py's "averaged zvalue"); the one touching
    # the missing point is hidden
    assert len(cells["averaged_train_loss"]) == (nx - 1) * (ny - 1)
    for i in range(nx - 1):
        for j in range(ny - 1):
            c = i + (nx - 1) * j
            corners = [points[(i + di) + nx * (j + dj), 2] for di in (0, 1) for dj in (0, 1)]
            if (i, j) == (3, 2):
                assert cells["vtkGhostType"][c] == HIDDEN_CELL and np.isnan(cells["averaged_train_loss"][c])
            else:
                assert cells["vtkGhostType"][c] == 0
                assert cells["averaged_train_loss"][c] == pytest.approx(np.mean(corners), rel=1e-12)


def test_export_refuses_what_it_cannot_draw(tmp_path):
    _, surface = known_surface(tmp_path)
    with pytest.raises(ValueError, match="end in .vts"):
        write_vts(surface, tmp_path / "surface.vtp")
    line = {"xcoordinates": np.linspace(-1, 1, 3), "ycoordinates": None, "train_loss": np.zeros(3), "attrs": {}}
    with pytest.raises(ValueError, match="only 2-D"):
        write_vts(line, tmp_path / "line.vts")
    assert not list(tmp_path.glob("*.vts*")) and not list(tmp_path.glob(".*vts*"))
