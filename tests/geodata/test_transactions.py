"""Change sets and the geometry of the map's split and merge (geodata.transactions), without a server."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import mapping, shape

from geodata import transactions
from geodata.errors import BadRequest, Unprocessable
from tests.factories import STEP, X0, Y0, grid_row, square


def test_a_split_gives_parts_that_share_the_cut_exactly():
    line = {"type": "LineString", "coordinates": [[X0 - 0.001, Y0 + 0.003], [X0 + 0.004, Y0 + 0.006],
                                                  [X0 + STEP + 0.001, Y0 + 0.007]]}
    parts = [shape(g) for g in transactions.split(mapping(square(0, 0)), line, "g00")]
    assert len(parts) == 2 and parts[0].area >= parts[1].area  # largest first
    assert sum(p.area for p in parts) == pytest.approx(STEP * STEP)
    assert parts[0].intersection(parts[1]).area == 0  # no overlap, not even a sliver
    shared = shapely.shared_paths(parts[0].exterior, parts[1].exterior)
    assert shapely.length(shared) == pytest.approx(shapely.LineString(line["coordinates"]).intersection(
        square(0, 0)).length)  # the whole cut, vertex for vertex


def test_a_line_that_stops_inside_cuts_nothing():
    line = {"type": "LineString", "coordinates": [[X0 - 0.001, Y0 + 0.005], [X0 + 0.005, Y0 + 0.005]]}
    with pytest.raises(Unprocessable, match="across"):
        transactions.split(mapping(square(0, 0)), line, "g00")
    with pytest.raises(BadRequest):
        transactions.split(mapping(square(0, 0)), {"type": "Point", "coordinates": [X0, Y0]}, "g00")
    with pytest.raises(BadRequest):
        transactions.split({"type": "Nonsense"}, line, "g00")


def test_a_union_of_neighbours_is_one_polygon_and_of_strangers_a_422():
    joined = shape(transactions.union({"a": mapping(square(0, 0)), "b": mapping(square(0, 1))}))
    assert joined.geom_type == "Polygon" and joined.area == pytest.approx(2 * STEP * STEP)
    with pytest.raises(Unprocessable, match="neighbours"):
        transactions.union({"a": mapping(square(0, 0)), "c": mapping(square(2, 0))})
    with pytest.raises(BadRequest):
        transactions.union({"a": mapping(square(0, 0))})


def test_a_change_set_is_read_with_its_removals_and_etags():
    feature = {"type": "Feature", "geometry": mapping(square(0, 0)), "properties": grid_row("g00")}
    changes = transactions.change_set({"type": "FeatureCollection", "features": [feature], "removed": ["g10", "g10"],
                                       "if_match": {"g00": '"abc"'}}, "grids")
    assert changes.removed == ("g10",) and changes.if_match == {"g00": '"abc"'}
    assert [f["properties"]["grid_id"] for f in changes.features] == ["g00"]
    with pytest.raises(BadRequest, match="both written and removed"):
        transactions.change_set({"type": "FeatureCollection", "features": [feature], "removed": ["g00"]}, "grids")
