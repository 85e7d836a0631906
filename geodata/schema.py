"""Layer definitions of SPEC §1, as data.

Everything that knows which fields a layer has, which are required, what
values they take and which field is the key reads it from here: validation,
the store, the API and (later) the upload report.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace

from . import i18n

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

POLYGONAL = ("Polygon", "MultiPolygon")
PUNCTUAL = ("Point",)
LINEAR = ("LineString", "MultiLineString")


@dataclass(frozen=True)
class Field:
    """One attribute of a layer.

    ``kind`` is one of ``key`` (string matching :data:`KEY_PATTERN`),
    ``string``, ``integer`` (≥ ``minimum`` when set), ``number``, ``enum``
    (one of ``choices``) or ``boolean`` (blank = ``default``).  ``required_when`` names the values of another field
    that make this one required, e.g. a centre's ``street`` is required when
    its ``level`` is ``street`` or ``community``.
    """

    name: str
    kind: str = "string"
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    required_when: tuple[str, tuple[str, ...]] | None = None
    description: str = ""
    default: object = None  # what a blank value stands for (booleans)

    def description_in(self, lang: str) -> str:
        """The description in the reader's language: ``field_help.<layer>.<field>`` of the first layer that
        describes a field so (the derived layers repeat the grids' fields); as written if none does."""
        key = _field_help_keys().get(self.description)
        return i18n.text(key, lang) if key and i18n.known(key) else self.description


@dataclass(frozen=True)
class Layer:
    """A stored layer: its key field, geometry types and fields in order."""

    name: str
    title: str
    key: str
    geometry_types: tuple[str, ...]
    fields: tuple[Field, ...] = field(default_factory=tuple)
    description: str = ""

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def geometry_type(self) -> str:
        """The one geometry type every feature is served as: polygonal layers as MultiPolygon, so that
        GIS clients, which guess a layer's type from its first features, need no promotion (the store
        keeps each feature as it came)."""
        if self.geometry_types == POLYGONAL:
            return "MultiPolygon"
        return "MultiLineString" if self.geometry_types == LINEAR else self.geometry_types[0]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def title_in(self, lang: str) -> str:
        """The title in the reader's language (``collection.<name>.title``); ``title`` (both) if it has none."""
        key = f"collection.{self.name}.title"
        return i18n.text(key, lang) if i18n.known(key) else self.title

    def description_in(self, lang: str) -> str:
        """The description in the reader's language (``collection.<name>.description``)."""
        key = f"collection.{self.name}.description"
        return i18n.text(key, lang) if i18n.known(key) else self.description

    def without(self, names) -> "Layer":
        """This layer as a reader who may not see the fields ``names`` knows it (the key always stays)."""
        names = set(names) - {self.key}
        if not any(f.name in names for f in self.fields):
            return self
        return replace(self, fields=tuple(f for f in self.fields if f.name not in names))


GRID_TYPES = ("residential", "industrial_park", "commercial_market", "office_building", "other")
CENTER_LEVELS = ("district", "street", "community")

GRIDS = Layer(
    name="grids",
    title="Grids 网格",
    key="grid_id",
    geometry_types=POLYGONAL,
    description="Governance grids: residential estates, industrial parks, markets, office buildings.",
    fields=(
        Field("grid_id", "key", required=True, description="unique key"),
        Field("name", required=True),
        Field("grid_type", "enum", required=True, choices=GRID_TYPES,
              description="居民小区 / 工业园区 / 商圈市场 / 商务楼宇 / 其他"),
        Field("city", description="地级市 (e.g. 宁波市); needed when one service holds several cities"),
        Field("district", required=True, description="区/县(市)"),
        Field("street", required=True, description="街道/镇/乡"),
        Field("community", required=True, description="社区/村"),
        Field("population", "integer", minimum=0, description="residents"),
        Field("households", "integer", minimum=0),
        Field("party_members", "integer", minimum=0, description="registered party members"),
        Field("grid_workers", "integer", minimum=0, description="full-time grid workers"),
        Field("instructor", description="party-building instructor; empty = staffing gap"),
        Field("party_branch", description="the branch that covers the grid; empty = staffing gap"),
    ),
)

CENTERS = Layer(
    name="centers",
    title="Service centres 党群服务中心",
    key="center_id",
    geometry_types=PUNCTUAL,
    description="Party-and-public service centres at district, street and community level.",
    fields=(
        Field("center_id", "key", required=True, description="unique key"),
        Field("name", required=True),
        Field("level", "enum", required=True, choices=CENTER_LEVELS, description="which unit it serves"),
        Field("city", description="地级市, as grids"),
        Field("district", required=True),
        Field("street", required_when=("level", ("street", "community"))),
        Field("community", required_when=("level", ("community",))),
        Field("floor_area_m2", "number", minimum=0),
    ),
)

DISTRICTS = Layer(
    name="districts",
    title="Districts 区县",
    key="adcode",
    geometry_types=POLYGONAL,
    description="Reference district boundaries.",
    fields=(
        Field("adcode", "key", required=True, description="administrative division code"),
        Field("name", required=True, description="the name grids use in `district`"),
        Field("name_en"),
        Field("city", description="地级市 the district belongs to, as grids name it"),
    ),
)

ROADS = Layer(
    name="roads",
    title="Roads 道路",
    key="road_id",
    geometry_types=LINEAR,
    description="The walking network: walking catchments follow the walkable roads (SPEC §2).",
    fields=(
        Field("road_id", "key", required=True, description="unique key"),
        Field("name"),
        Field("highway", description="road class, e.g. primary, residential, footway"),
        Field("walkable", "boolean", default=True, description="whether people walk along it; blank = true"),
    ),
)

LAYERS: dict[str, Layer] = {layer.name: layer for layer in (GRIDS, CENTERS, DISTRICTS, ROADS)}


# Derived, read-only collections (SPEC §1): computed by geodata.coverage, never uploaded.
COVERAGE = Layer(
    name="coverage",
    title="Coverage 服务覆盖",
    key="grid_id",
    geometry_types=POLYGONAL,
    description="The grids with the share of their area inside a service centre's catchment.",
    fields=GRIDS.fields + (
        Field("coverage_ratio", "number", minimum=0, description="share of the grid's area in any catchment, 0-1"),
        Field("covered_population", "integer", minimum=0, description="population × coverage_ratio"),
        Field("coverage_status", "enum", choices=("covered", "partial", "uncovered")),
        Field("disc_covered_population", "integer", minimum=0,
              description="walking analyses: the people the discs would count as covered"),
        Field("walk_gap_population", "integer", minimum=0,
              description="walking analyses: the people on land inside a disc but beyond the walk"),
    ),
)

GAPS = Layer(
    name="gaps",
    title="Gaps 覆盖缺口",
    key="gap_id",
    geometry_types=POLYGONAL,
    description="Service gaps, units missing a centre, tiling gaps, overlaps, staffing gaps and (walking "
                "analyses) walk gaps: land inside a disc but beyond the walk.",
    fields=(
        Field("gap_id", required=True),
        Field("kind", "enum", required=True,
              choices=("service_gap", "missing_center", "tiling_gap", "overlap", "staffing_gap", "walk_gap")),
        Field("level", "enum", choices=("district", "street", "community"),
              description="for missing_center: the level of the unit that lacks one"),
        Field("city"), Field("district"), Field("street"), Field("community"), Field("grid_id"),
        Field("area_m2", "number", minimum=0),
        Field("detail", description="a short human-readable reason"),
    ),
)

CATCHMENTS = Layer(
    name="catchments",
    title="Catchments 服务范围",
    key="catchment_id",
    geometry_types=POLYGONAL,
    description="What the centres reach: with walking catchments, the land within reach on foot (kind walk) and "
                "within each life circle's distance (kind ring, distance_m), in cells; else each centre's disc.",
    fields=(
        Field("catchment_id", required=True),
        Field("kind", "enum", required=True, choices=("disc", "walk", "ring")),
        Field("level", "enum", choices=("district", "street", "community"), description="a disc's centre's level"),
        Field("center_id", description="a disc's centre"),
        Field("distance_m", "number", minimum=0, description="a ring's walking distance, a disc's radius"),
    ),
)


def _unit_layer(name: str, title: str, keys: tuple[str, ...]) -> Layer:
    return Layer(
        name=name, title=title, key="unit_id", geometry_types=POLYGONAL,
        description=f"The grids dissolved by {' and '.join(keys)} (and city, when the grids name one), "
                    "with their totals.",
        fields=(Field("unit_id", required=True, description="the unit's names joined by '.', its city's first "
                                                                "when the grids name cities"),
                Field("city", description="地级市, when the grids name cities"),
                *(Field(k, required=True) for k in keys),
                *(Field(n, "integer", minimum=0) for n in ("grids", "population", "households", "party_members",
                                                          "grid_workers", "covered_population")),
                Field("covered_share", "number", minimum=0, description="covered_population / population")),
    )


STREETS = _unit_layer("streets", "Streets 街道", ("district", "street"))
COMMUNITIES = _unit_layer("communities", "Communities 社区", ("district", "street", "community"))

DERIVED: dict[str, Layer] = {layer.name: layer for layer in (STREETS, COMMUNITIES, COVERAGE, GAPS, CATCHMENTS)}


@functools.cache
def _field_help_keys() -> dict[str, str]:
    """A field description's catalogue key, by its text."""
    keys: dict[str, str] = {}
    for layer in (*LAYERS.values(), *DERIVED.values()):
        for f in layer.fields:
            if f.description:
                keys.setdefault(f.description, f"field_help.{layer.name}.{f.name}")
    return keys
