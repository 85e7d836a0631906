"""The catalog: collections as a reader may see them — hidden fields left out, under another tag."""

import pytest

from geodata.catalog import Catalog
from geodata.store import open_store
from geodata.validate import validate
from tests.factories import center_row, centers, six_grids

RESTRICTED = frozenset({"instructor", "party_branch", "party_members"})


@pytest.fixture
def catalog(tmp_path):
    store = open_store(tmp_path)
    store.write("grids", validate(six_grids(), "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author="t")
    return Catalog(store)


def test_hidden_fields_are_left_out_of_features_layer_and_filters(catalog):
    full, seen = catalog.get("grids"), catalog.get("grids", hidden=RESTRICTED)
    assert RESTRICTED <= set(full.features.columns) and not RESTRICTED & set(seen.features.columns)
    assert not RESTRICTED & set(seen.layer.field_names) and "instructor" not in seen.features.feature("g00")
    assert seen.hidden == RESTRICTED and seen.tag != full.tag and seen.version == full.version
    assert not RESTRICTED & set(seen.features.gdf.columns) and RESTRICTED <= set(full.features.gdf.columns)


def test_derived_collections_hide_them_too(catalog):
    assert "party_members" not in catalog.get("streets", hidden=RESTRICTED).features.columns
    assert "instructor" not in catalog.get("coverage", hidden=RESTRICTED).features.columns


def test_a_collection_without_any_of_them_is_shared_by_every_reader(catalog):
    full, seen = catalog.get("centers"), catalog.get("centers", hidden=RESTRICTED)
    assert seen.tag == full.tag and seen.features.columns == full.features.columns and seen.hidden == frozenset()


def test_the_key_is_never_hidden(catalog):
    seen = catalog.get("grids", hidden=frozenset({"grid_id", "name"}))
    assert "grid_id" in seen.features.columns and "name" not in seen.features.columns
    assert seen.layer.key in seen.layer.field_names


@pytest.mark.parametrize("properties, kept", [
    ({"grid_id": "a", "instructor": '张"三', "x": 1, "party_members": 12, "party_branch": None},
     {"grid_id": "a", "x": 1}),
    ({"instructor": "a", "party_branch": "b", "party_members": 3}, {}),  # every member, the first ones too
    ({"a": 1, "instructor": {"n": [1, 2]}, "b": "x"}, {"a": 1, "b": "x"}),  # a value of another shape
    ({"party_members": -1.5e3, "z": 'instructor":'}, {"z": 'instructor":'}),  # a name inside a text stays
    ({"note": ',"instructor":"x"', "instructor": "y"}, {"note": ',"instructor":"x"'}),
], ids=["middle", "all", "nested", "text", "quoted"])
def test_hidden_members_are_cut_out_of_the_stored_text(properties, kept):
    from geodata import geojson
    from geodata.catalog import _without

    head = '{"type":"Feature","id":"a","geometry":{"type":"Point","coordinates":[121.5,29.8]},"properties":'
    assert _without(head + geojson.dumps(properties) + "}", RESTRICTED) == head + geojson.dumps(kept) + "}"
