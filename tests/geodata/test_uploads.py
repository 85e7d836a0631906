"""geodata.uploads: the replace guard (SPEC §4) — a replace that removes ≥ 10 % of a layer, or all of a
district, is stored only when confirmed; the impact is counted in total and per district."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely import Polygon, box

from geodata import uploads
from geodata.errors import BadRequest, PreconditionFailed
from geodata.store import open_store
from geodata.uploads import CONFIRM_PERCENT, impact, upload
from geodata.validate import validate
from tests.factories import center_row, centers, city_grids, grid_row, grids, six_grids


@pytest.fixture
def store(tmp_path):
    return open_store(tmp_path / "data")


def as_file(gdf) -> bytes:
    return gdf.to_json(drop_id=True).encode()


def stored(store, layer, gdf):
    report = validate(gdf, layer)
    assert report.ok, report.errors
    return store.write(layer, report.data, author="tests")


def send(store, gdf, layer="grids", **kwargs):
    return upload(store, layer, as_file(gdf), f"{layer}.geojson", author="editor", **kwargs)


def twenty(**district_of) -> list[dict]:
    """Twenty grids g00..g19 in 海曙区, unless ``district_of`` moves some elsewhere."""
    return [grid_row(f"g{i:02d}", district=district_of.get(f"g{i:02d}", "海曙区")) for i in range(20)]


# --- observation 16: one street's grids replacing a city ---------------------------------------

def test_one_streets_grids_do_not_silently_replace_a_city(store):
    city = city_grids()  # 4 districts × 2 streets × 50 grids
    stored(store, "grids", city)
    one_street = city[city.street == "海曙区0号街道"].assign(population=7)  # the 50 grids, edited
    outcome = send(store, one_street, lang="zh")
    assert outcome.status == 409 and store.current("grids").version == 1  # nothing stored
    found = outcome.impact
    assert (found.before, found.after, found.removed, found.added, found.changed, found.unchanged) == \
        (400, 50, 350, 0, 50, 0)
    assert found.emptied == ["北仑区", "江北区", "鄞州区"]
    assert [(d.district, d.before, d.after, d.removed, d.changed) for d in found.districts] == [
        ("北仑区", 100, 0, 100, 0), ("江北区", 100, 0, 100, 0), ("海曙区", 100, 50, 50, 50), ("鄞州区", 100, 0, 100, 0)]
    refusal = outcome.refusal()
    assert refusal["code"] == "replace_needs_confirmation"
    assert "将删除 350 个网格（87.5%），新增 0，修改 50；3 个区县将失去全部网格：北仑区、江北区、鄞州区" in refusal["message"]
    assert "confirm=replace" in refusal["message"]
    report = outcome.to_dict()["report"]["impact"]
    assert (report["removed"], report["needs_confirmation"], report["confirmed"]) == (350, True, False)

    confirmed = send(store, one_street, confirm="replace")
    assert confirmed.status == 201 and confirmed.version.version == 2 and confirmed.confirmed
    assert len(store.read("grids")) == 50


# --- the threshold, worked out by hand ----------------------------------------------------------

@pytest.mark.parametrize("before,removed,refused", [
    (20, 2, True),  # 10 %: refused
    (20, 1, False),  # 5 %
    (30, 3, True),  # 10 % exactly, where 0.1 × 30 in floating point is 3.0000000000000004
    (30, 2, False),  # 6.7 %
    (11, 1, False),  # 9.1 %
    (7, 1, True),  # 14.3 %
])
def test_the_ten_percent_threshold_on_both_sides(store, before, removed, refused):
    assert CONFIRM_PERCENT == 10
    rows = [grid_row(f"g{i:02d}") for i in range(before)]
    stored(store, "grids", grids(rows))
    outcome = send(store, grids(rows[removed:]))
    assert outcome.impact.removed == removed and outcome.impact.emptied == []
    assert outcome.status == (409 if refused else 201)
    assert store.current("grids").version == (1 if refused else 2)


def test_a_district_losing_every_grid_needs_confirmation_below_ten_percent(store):
    rows = twenty(g19="江北区")
    stored(store, "grids", grids(rows))
    outcome = send(store, grids(rows[:19]), lang="en")  # 1 of 20 removed: 5 %, but all of 江北区
    assert outcome.status == 409 and outcome.impact.emptied == ["江北区"]
    assert "1 of 20 grids removed (5%), 0 added, 0 changed; 1 district loses all its grids: 江北区" in \
        outcome.refusal()["message"]
    assert store.current("grids").version == 1


def test_a_district_renamed_is_not_emptied(store):
    rows = twenty(g18="奉化县", g19="奉化县")
    stored(store, "grids", grids(rows))
    renamed = twenty(g18="奉化区", g19="奉化区")
    outcome = send(store, grids(renamed))  # the features stay; only their district changes
    assert outcome.status == 201 and outcome.impact.removed == 0 and outcome.impact.changed == 2
    assert outcome.impact.emptied == []


def test_centres_are_counted_by_district_and_districts_by_name(store):
    stored(store, "centers", centers([center_row("c1", "district"), center_row("c2", "district", district="江北区")]))
    outcome = send(store, centers([center_row("c1", "district")]), layer="centers")
    assert outcome.status == 409 and outcome.impact.emptied == ["江北区"]

    twelve = gpd.GeoDataFrame({"adcode": [f"3302{i:02d}" for i in range(12)], "name": [f"区{i}" for i in range(12)]},
                              geometry=[box(121 + i, 29, 121.5 + i, 29.5) for i in range(12)], crs="EPSG:4326")
    stored(store, "districts", twelve)
    recoded = twelve.assign(adcode=lambda d: d.adcode.where(d.name != "区0", "330299"))
    outcome = send(store, recoded, layer="districts")  # 1 of 12 (8.3 %), but the feature 区0 has now goes
    assert (outcome.impact.removed, outcome.impact.added, outcome.impact.emptied) == (1, 1, ["区0"])
    assert outcome.status == 409
    outcome = send(store, twelve.assign(name_en="Zone"), layer="districts")  # every district changed, none removed
    assert outcome.status == 201 and (outcome.impact.changed, outcome.impact.emptied) == (12, [])


# --- what needs no confirmation ---------------------------------------------------------------

def test_a_dry_run_reports_the_impact_and_stores_nothing(store):
    rows = twenty()
    stored(store, "grids", grids(rows))
    outcome = send(store, grids(rows[:5]), dry_run=True)
    assert outcome.status == 200 and store.current("grids").version == 1
    found = outcome.to_dict()["report"]["impact"]
    assert (found["removed"], found["removed_percent"], found["needs_confirmation"]) == (15, 75.0, True)
    assert found["summary"] == "15 of 20 grids removed (75%), 0 added, 0 changed"


def test_merge_never_asks(store):
    rows = twenty(g19="江北区")
    stored(store, "grids", grids(rows))
    outcome = send(store, grids([grid_row("g00", population=1), grid_row("new")]), mode="merge")
    assert outcome.status == 201
    assert (outcome.impact.removed, outcome.impact.added, outcome.impact.changed, outcome.impact.after) == (0, 1, 1, 21)
    assert not outcome.impact.needs_confirmation


def test_a_first_upload_and_an_unchanged_one_need_no_confirmation(store):
    city = city_grids(districts=("海曙区", "江北区"), per_street=5)
    first = send(store, city)
    assert first.status == 201 and (first.impact.before, first.impact.added) == (0, 20)
    again = send(store, city)  # the same file: stored rings are re-oriented, and still nothing changed
    assert again.status == 201 and (again.impact.unchanged, again.impact.changed, again.impact.removed) == (20, 0, 0)


def test_an_emptied_layer_version_needs_no_confirmation(store):
    empty = grids([grid_row("x")]).iloc[:0]
    store.write("grids", empty, author="tests")
    assert send(store, grids(twenty())).status == 201


# --- the request's other conditions ----------------------------------------------------------

def test_confirm_takes_one_word(store):
    stored(store, "grids", grids(twenty()))
    with pytest.raises(BadRequest, match="confirm must be 'replace'"):
        send(store, grids(twenty()[:1]), confirm="yes")


def test_a_stale_if_match_is_a_412_before_the_guard(store):
    stored(store, "grids", grids(twenty()))
    with pytest.raises(PreconditionFailed):
        send(store, grids(twenty()[:1]), if_version=0)


def test_the_guard_holds_for_the_version_it_weighed(store, monkeypatch):
    """Another upload landing between the impact and the write: the unconfirmed replace is not stored over it."""
    rows = twenty()
    stored(store, "grids", grids(rows))
    weigh = uploads.impact

    def weigh_then_someone_uploads(*args, **kwargs):
        found = weigh(*args, **kwargs)
        stored(store, "grids", grids(rows[:2]))  # version 2, by someone else
        return found

    monkeypatch.setattr(uploads, "impact", weigh_then_someone_uploads)
    with pytest.raises(PreconditionFailed):
        send(store, grids(rows))  # nothing removed from version 1, but version 2 has 2 grids
    assert store.current("grids").version == 2


def test_impact_of_a_layer_without_districts_counts_totals_only():
    rows = twenty()
    old = grids(rows)
    found = impact(old.drop(columns="district"), grids(rows[:10]).drop(columns="district"), "grids")
    assert (found.removed, found.districts) == (10, ())


@pytest.mark.parametrize("part,whole,shown", [(0, 0, "0%"), (0, 20, "0%"), (1, 20, "5%"), (1, 6, "16.6%"),
                                              (8449, 8499, "99.4%"), (8498, 8499, "99.9%"), (1, 8499, "<0.1%"),
                                              (20, 20, "100%")])
def test_shares_in_words_are_never_rounded_up_to_all_or_down_to_none(part, whole, shown):
    assert uploads._percent(part, whole) == shown


# --- issue 14, observation 2: a merge keeps the warnings the file itself earned -----------------

# a bow-tie over g21's square: repaired into two triangles, each a quarter of the square
BOWTIE = Polygon([(121.52, 29.81), (121.53, 29.82), (121.53, 29.81), (121.52, 29.82), (121.52, 29.81)])


def repaired_warnings(outcome):
    return [(p.index, p.key, p.field) for p in outcome.report.warnings if p.message.startswith("invalid geometry repaired")]


@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_a_repaired_geometry_is_reported_in_both_modes(store, mode):
    stored(store, "grids", six_grids())
    change = six_grids() if mode == "replace" else grids([grid_row("g00", population=5), grid_row("g21")])
    change.geometry = [*change.geometry.iloc[:-1], BOWTIE]  # the file's last feature, g21, is a bow-tie
    outcome = send(store, change, mode=mode)
    assert outcome.status == 201, outcome.report.errors
    assert repaired_warnings(outcome) == [(len(change) - 1, "g21", None)]  # numbered by its place in the file
    g21 = store.read("grids").set_index("grid_id").geometry["g21"]
    assert g21.is_valid and g21.geom_type == "MultiPolygon" and g21.area == pytest.approx(0.00005)


def test_a_merge_reports_each_warning_once_and_only_for_the_file(store):
    rows = [grid_row(f"g{i:02d}") for i in range(3)]
    stored(store, "grids", grids(rows).assign(note="stored"))  # the stored layer has an unknown field
    change = grids([grid_row("g01", population=5)], [BOWTIE]).assign(colour="red")  # so does the file
    outcome = send(store, change, mode="merge")
    assert outcome.status == 201, outcome.report.errors
    warnings = [(p.index, p.key, p.field, p.message.split(":")[0]) for p in outcome.report.warnings]
    assert warnings.count((0, "g01", None, "invalid geometry repaired")) == 1
    assert [w for w in warnings if w[2] == "colour"] == [(None, None, "colour", "unknown field 'colour' is kept as it is")]
    # the stored features' warnings name no feature of the file
    assert all(w[0] is None for w in warnings if w[1] not in (None, "g01"))


def test_a_refused_merge_points_each_error_at_its_own_feature(store):
    stored(store, "grids", six_grids())
    # two features with one key: each problem is the one at its place in the file, not the key's last place
    change = grids([grid_row("g00", grid_type="park"), grid_row("g00")])
    outcome = send(store, change, mode="merge")
    assert outcome.status == 422
    assert sorted((p.index, p.field) for p in outcome.report.errors) == [(0, "grid_type"), (1, "grid_id")]
