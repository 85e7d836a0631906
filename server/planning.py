"""Planning: where to build the next centres, and coverage as if proposed centres existed."""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import pandas as pd
from flask import Blueprint, Response, jsonify, request

from geodata import geojson, proposals, summaries, tables
from geodata.coverage import LEVELS, SUMMARY_LEVELS
from geodata.params import whole_number
from geodata.errors import BadRequest, TooLarge
from geodata.i18n import in_language, says
from geodata.siting import MAX_K, SOLVERS
from geodata.unitkeys import UNIT_KEYS

from . import services
from .i18n import current_language
from .whatif import params as whatif_params, require_user

blueprint = Blueprint("planning", __name__)

MAX_PROPOSED = 200


@blueprint.get("/api/recommendations")
def recommendations():
    args = request.args
    k = whole_number(args.get("k", "5"), "k", minimum=1, maximum=MAX_K)
    level, solver = args.get("level", "community"), args.get("solver", "auto")
    if level not in LEVELS:  # checked here: a bad request never takes a job
        raise BadRequest(says("params.one_of", name="level", choices=", ".join(LEVELS), value=repr(level)))
    if solver not in SOLVERS:
        raise BadRequest(says("params.one_of", name="solver", choices=", ".join(SOLVERS), value=repr(solver)))
    params = whatif_params()
    unit = {key: args[key] for key in UNIT_KEYS if args.get(key)}
    result = services().catalog.recommendation(level, k, params, unit, solver)  # a job, once per data and asking
    if args.get("f") == "csv":
        table = result.sites.assign(lon=result.sites.geometry.x.round(6), lat=result.sites.geometry.y.round(6))
        return Response(tables.to_csv(pd.DataFrame(table.drop(columns="geometry"))), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="recommendations.csv"'})
    body = geojson.feature_collection(
        geojson.feature_strings(result.sites), solver=result.solver, population=result.population,
        covered_before=result.covered_before, reason=in_language(result.reason, current_language()))
    return Response(body, mimetype="application/geo+json")


@blueprint.post("/api/whatif")
def whatif():
    """The summary as if the proposed centres (GeoJSON points with a ``level``: district, street or community,
    each with its level's radius) existed; nothing is stored.  ``effects``: the city, the district and the
    street of each proposed centre, before and after (``geodata.proposals``).

    ``city=…``, ``district=…`` etc. restrict it to one unit: before, after and the rows are that unit's
    (``effects`` still count the people a centre by its border covers outside it).
    """
    require_user(says("whatif.whatifs"))
    proposed = _proposed(request.get_json(silent=True))
    catalog = services().catalog
    params = whatif_params()
    level = request.args.get("level", "district")
    if level not in SUMMARY_LEVELS:
        raise BadRequest(says("params.one_of", name="level", choices=", ".join(SUMMARY_LEVELS), value=repr(level)))
    unit = {key: request.args[key] for key in UNIT_KEYS if request.args.get(key)}
    analysis = catalog.analysis(params)  # the baseline of the summary and the recommendations
    before = _whole(analysis, unit)  # checked here: an unknown unit never takes a job
    points = list(zip(proposed.geometry.x.tolist(), proposed.geometry.y.tolist()))
    after = catalog.what_if(  # the summaries: a job, once per data, parameters, proposal and unit
        tuple((x, y, lvl) for (x, y), lvl in zip(points, proposed["level"].tolist())), params, unit)
    # the whole dataset's summaries, or the unit's alone when only its grids were analysed (jobs.whatif_summaries)
    analysed = dataclasses.replace(analysis, summaries=after)
    city_after = summaries.rows(analysed, "total", unit).iloc[0]
    sites = proposals.site_units(catalog.get("grids").features.gdf, points)
    return jsonify({
        "proposed": len(proposed),
        # where each proposed centre stands, and what it changes there: its city, district and street
        "sites": [{"level": lvl, **names} for lvl, names in zip(proposed["level"].tolist(), sites)],
        "effects": proposals.effects(analysis.summaries, after, sites),
        "before": before,
        "after": {"covered_population": int(city_after["covered_population"]),
                  "covered_share": city_after["covered_share"]},
        "level": level,
        "rows": _rows_of(analysed, level, unit).astype(object).where(lambda f: f.notna(), None).to_dict("records"),
    })


def _rows_of(analysis, level: str, unit: dict[str, str]) -> pd.DataFrame:
    """The rows of ``level`` inside ``unit``; for a level above the unit's, the rows of the units holding it."""
    columns = analysis.summaries[level].columns
    return summaries.rows(analysis, level, unit if level == "total" else {k: v for k, v in unit.items() if k in columns})


def _whole(analysis, unit: dict[str, str]) -> dict:
    """Covered population and share of the whole dataset, or of the units ``unit`` names (BadRequest for none)."""
    row = summaries.rows(analysis, "total", unit).iloc[0]
    return {"covered_population": int(row["covered_population"]), "covered_share": row["covered_share"]}


def _proposed(body) -> gpd.GeoDataFrame:
    if not isinstance(body, dict) or body.get("type") != "FeatureCollection" or not isinstance(
            body.get("features"), list):
        raise BadRequest(says("whatif.send"))
    features = body["features"]
    if len(features) > MAX_PROPOSED:
        raise TooLarge(says("whatif.too_many", most=MAX_PROPOSED))
    try:
        frame = gpd.GeoDataFrame.from_features(features, crs="EPSG:4326")
    except Exception as e:  # malformed GeoJSON of any kind
        raise BadRequest(says("whatif.not_geojson", reason=str(e))) from None
    if frame.empty:
        raise BadRequest(says("whatif.none"))
    if not (frame.geom_type == "Point").all():
        raise BadRequest(says("whatif.points"))
    if "level" not in frame or not frame["level"].isin(LEVELS).all():
        raise BadRequest(says("whatif.level", choices=", ".join(LEVELS)))
    x, y = frame.geometry.x, frame.geometry.y
    if not (x.between(-180, 180) & y.between(-90, 90)).all():
        raise BadRequest(says("whatif.lonlat"))
    return frame[["level", "geometry"]]
