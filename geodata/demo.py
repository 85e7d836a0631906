"""Deterministic demo datasets: districts, grids and service centres.

``build_demo`` is Ningbo (10 districts, 8,499 grids); ``build_province_demo`` is
Zhejiang (11 cities, 90 districts, 85,004 grids), each district treated as
Ningbo's are, with ``city`` on every grid and centre.  ``install_if_empty``
puts the one GRIDMAP_DEMO names into an empty store.

The real district boundaries are split into streets, communities and
grids.  Grid seeds are sampled denser around the city centre and the county
seats, one Voronoi diagram per district clipped to the district gives the
grids, and communities and streets are clusters of grids, so the hierarchy
nests exactly.  The grids of a district tile it without overlaps; the only gaps
are hairline slivers along the district boundary left by rounding to 1e-6°.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from .i18n import DEFAULT_LANGUAGE, says
from .store import Store
from .validate import validate

DISTRICTS_PATH = Path(__file__).parent / "data" / "ningbo_districts.geojson"

_WGS84 = "EPSG:4326"
_METRIC = "EPSG:32651"  # UTM 51N
_TOTAL_GRIDS = 8500
_TOTAL_COMMUNITIES = 2500

# adcode: (residents in thousands, share of grid seeds drawn around the cores,
# type profile, real streets/towns with 街道 first as they take the densest places)
_DISTRICTS = {
    "330203": (1196, 0.70, "core", "南门街道 鼓楼街道 西门街道 月湖街道 江厦街道 白云街道 段塘街道 望春街道 "
               "石碶街道 高桥镇 集士港镇 古林镇 横街镇 鄞江镇 洞桥镇 章水镇 龙观乡"),
    "330205": (589, 0.75, "core", "中马街道 白沙街道 孔浦街道 文教街道 甬江街道 庄桥街道 洪塘街道 慈城镇"),
    "330206": (826, 0.60, "industry", "新碶街道 大碶街道 小港街道 霞浦街道 柴桥街道 戚家山街道 春晓街道 "
               "梅山街道 白峰街道 大榭街道"),
    "330211": (509, 0.65, "industry", "招宝山街道 蛟川街道 骆驼街道 庄市街道 贵驷街道 九龙湖镇 澥浦镇"),
    "330212": (1614, 0.70, "core", "中河街道 首南街道 钟公庙街道 下应街道 潘火街道 东胜街道 百丈街道 明楼街道 "
               "白鹤街道 东柳街道 东郊街道 福明街道 梅墟街道 新明街道 姜山镇 五乡镇 邱隘镇 云龙镇 "
               "横溪镇 塘溪镇 咸祥镇 瞻岐镇 东吴镇 东钱湖镇"),
    "330213": (578, 0.50, "county", "锦屏街道 岳林街道 江口街道 西坞街道 萧王庙街道 溪口镇 尚田镇 莼湖镇 "
               "裘村镇 大堰镇 松岙镇"),
    "330225": (560, 0.45, "county", "丹东街道 丹西街道 爵溪街道 石浦镇 西周镇 鹤浦镇 贤庠镇 定塘镇 墙头镇 "
               "泗洲头镇 涂茨镇 大徐镇 新桥镇 东陈乡 晓塘乡 黄避岙乡 茅洋乡 高塘岛乡"),
    "330226": (696, 0.45, "county", "跃龙街道 桃源街道 梅林街道 桥头胡街道 长街镇 力洋镇 一市镇 岔路镇 "
               "前童镇 桑洲镇 黄坛镇 大佳何镇 强蛟镇 西店镇 深甽镇 胡陈乡 茶院乡 越溪乡"),
    "330281": (1254, 0.50, "industry", "凤山街道 阳明街道 梨洲街道 兰江街道 低塘街道 朗霞街道 临山镇 "
               "黄家埠镇 小曹娥镇 泗门镇 马渚镇 牟山镇 丈亭镇 三七市镇 河姆渡镇 大隐镇 陆埠镇 "
               "梁弄镇 大岚镇 四明山镇 鹿亭乡"),
    "330282": (1829, 0.55, "industry", "浒山街道 白沙路街道 古塘街道 坎墩街道 宗汉街道 观海卫镇 附海镇 "
               "桥头镇 匡堰镇 逍林镇 新浦镇 胜山镇 横河镇 崇寿镇 庵东镇 长河镇 周巷镇 掌起镇 龙山镇"),
}

# Urban cores: lon, lat, peak density relative to the countryside, decay length (km).
_CORES = np.array([
    (121.55, 29.87, 60, 3.5),  # Sanjiangkou: Haishu, Jiangbei, Yinzhou
    (121.71, 29.95, 20, 1.8),  # Zhenhai
    (121.84, 29.90, 20, 2.2),  # Beilun
    (121.15, 30.04, 25, 2.0),  # Yuyao
    (121.25, 30.17, 25, 2.2),  # Cixi
    (121.41, 29.66, 20, 1.8),  # Fenghua
    (121.43, 29.29, 20, 1.8),  # Ninghai
    (121.87, 29.48, 18, 1.6),  # Xiangshan
])
_URBAN = 6.0  # relative density above which a place counts as urban

# Lattice steps (1e-6°) tried, nearest first, for a vertex rounding pushed out of its district.
_OFFSETS = np.stack(np.meshgrid(np.arange(-10, 11), np.arange(-10, 11)), axis=-1).reshape(-1, 2)
_OFFSETS = _OFFSETS[np.argsort(np.hypot(*_OFFSETS.T), kind="stable")]
_RINGS = np.searchsorted(np.hypot(*_OFFSETS.T), [1.5, 3, 6], side="right")  # where to pause the search

# The province demo: Zhejiang's 90 districts (Ningbo's ten keep the table above).
PROVINCE_DISTRICTS_PATH = Path(__file__).parent / "data" / "zhejiang_districts.geojson"
PROVINCE_CITIES_PATH = Path(__file__).parent / "data" / "zhejiang_cities.geojson"
_PROVINCE_GRIDS = 85_000
_PROVINCE_COMMUNITIES = 24_700  # with about 95 % of them served: some 24,000 centres in all
_PROVINCE_STREETS = 1_360  # Zhejiang's 乡镇街道
_PROVINCE_URBAN_SHARE = {"core": 0.70, "industry": 0.55, "county": 0.45}
# adcode: (residents in thousands, about the 2020 census; type profile)
_PROVINCE = {
    "330102": (1325, "core"), "330105": (1117, "core"), "330106": (1145, "core"), "330108": (504, "core"),
    "330109": (2011, "industry"), "330110": (1269, "core"), "330111": (836, "county"),
    "330112": (641, "county"), "330113": (1118, "industry"), "330114": (769, "industry"),
    "330122": (455, "county"), "330127": (329, "county"), "330182": (443, "county"),
    "330302": (1151, "core"), "330303": (763, "industry"), "330304": (963, "core"), "330305": (107, "county"),
    "330324": (869, "county"), "330326": (863, "county"), "330327": (840, "county"), "330328": (288, "county"),
    "330329": (266, "county"), "330381": (1520, "industry"), "330382": (1453, "industry"),
    "330383": (465, "industry"),
    "330402": (620, "core"), "330411": (698, "industry"), "330421": (647, "industry"),
    "330424": (525, "industry"), "330481": (1076, "industry"), "330482": (671, "industry"),
    "330483": (1029, "industry"),
    "330502": (886, "core"), "330503": (549, "industry"), "330521": (549, "industry"),
    "330522": (673, "industry"), "330523": (581, "county"),
    "330602": (1033, "core"), "330603": (1098, "industry"), "330604": (833, "industry"),
    "330624": (439, "county"), "330681": (1218, "industry"), "330683": (675, "county"),
    "330702": (970, "core"), "330703": (495, "county"), "330723": (464, "county"), "330726": (461, "county"),
    "330727": (183, "county"), "330781": (576, "county"), "330782": (1859, "industry"),
    "330783": (1089, "county"), "330784": (964, "industry"),
    "330802": (533, "core"), "330803": (405, "county"), "330822": (259, "county"), "330824": (246, "county"),
    "330825": (362, "county"), "330881": (478, "county"),
    "330902": (548, "core"), "330903": (379, "county"), "330921": (202, "county"), "330922": (77, "county"),
    "331002": (646, "core"), "331003": (646, "industry"), "331004": (667, "industry"),
    "331022": (372, "county"), "331023": (438, "county"), "331024": (453, "county"),
    "331081": (1416, "industry"), "331082": (1114, "county"), "331083": (644, "industry"),
    "331102": (594, "core"), "331121": (507, "county"), "331122": (399, "county"), "331123": (189, "county"),
    "331124": (208, "county"), "331125": (129, "county"), "331126": (137, "county"), "331127": (111, "county"),
    "331181": (244, "county"),
}
# City centres besides Ningbo's (in _CORES): lon, lat, peak density, decay length (km).  Every
# district with neither gets a county-seat core of its own inside it.
_CITY_CORES = np.array([
    (120.17, 30.27, 60, 4.5),  # Hangzhou
    (120.67, 28.01, 45, 3.0),  # Wenzhou
    (120.76, 30.75, 30, 2.5),  # Jiaxing
    (120.09, 30.89, 30, 2.5),  # Huzhou
    (120.58, 30.00, 35, 2.5),  # Shaoxing
    (119.65, 29.08, 35, 2.5),  # Jinhua
    (118.87, 28.94, 25, 2.0),  # Quzhou
    (122.11, 30.02, 20, 1.8),  # Zhoushan (Dinghai)
    (121.42, 28.66, 30, 2.2),  # Taizhou (Jiaojiang)
    (119.92, 28.45, 25, 2.0),  # Lishui
])
_SEAT = (20, 1.8)  # a county seat's peak density and decay length (km), as Ningbo's
_STREET_A = list("东西南北中新大小上下长永安平兴福和石白金青龙凤清仁义河高双三塘")
_STREET_B = list("江湖山溪桥塘浦岭港口关门坑源田洋亭林阳城岙埠")
# share of a district's streets that are 街道 (the densest ones), and of 乡 (the sparsest)
_STREET_KINDS = {"core": (0.8, 0.0), "industry": (0.4, 0.0), "county": (0.25, 0.15)}

_TYPES = np.array(["residential", "industrial_park", "commercial_market", "office_building", "other"])
# (profile, urban) -> probabilities in _TYPES order
_TYPE_P = {
    ("core", True): (0.80, 0.02, 0.07, 0.08, 0.03),
    ("core", False): (0.84, 0.08, 0.03, 0.01, 0.04),
    ("industry", True): (0.76, 0.12, 0.05, 0.03, 0.04),
    ("industry", False): (0.78, 0.15, 0.02, 0.00, 0.05),
    ("county", True): (0.84, 0.04, 0.05, 0.03, 0.04),
    ("county", False): (0.86, 0.06, 0.02, 0.00, 0.06),
}
_RESIDENT_SHARE = np.array([1.0, 0.08, 0.5, 0.15, 0.3])  # residents of a grid type vs residential

_URBAN_A = list("东南西北新华明光和平安康宁兴盛福瑞泰丰春梅兰竹松桂荷桃柳江湖海山云月星阳天龙凤嘉锦文昌永青金翠")
_URBAN_B = list("苑园湖桥光华安庭城府湾河街门庄里坊")
_RURAL_A = list("王李张陈周徐胡林俞应竺鲍史邬屠方叶上下前后东西南北大小新老高长石")
_RURAL_B = list("家岙溪桥山塘浦湾岭墩庄坑头洋畈埠")
_SURNAMES = list("王陈张李周徐胡林俞应竺鲍史邬屠方叶杨黄赵吴孙朱郑沈何罗谢郭马毛孔汪舒戴蒋傅")
_GIVEN = ("建国 伟 芳 秀英 海燕 志强 丽华 建华 国平 红梅 晓东 卫东 静 敏 军 勇 杰 磊 婷 丹丹 雪梅 立新 "
          "春华 文斌 海波 亚萍 佳琪 宇航 振华 美娟 国强 素芬 玲 斌 鹏 浩 欣怡 晨 一鸣 慧 燕 桂芳 永康").split()


def load_districts() -> gpd.GeoDataFrame:
    """Return the ten Ningbo districts (EPSG:4326, counter-clockwise shells)."""
    gdf = gpd.read_file(DISTRICTS_PATH)[["adcode", "name", "name_en", "geometry"]]
    gdf["geometry"] = shapely.orient_polygons(_round(gdf.geometry.values))
    return gdf.set_crs(_WGS84, allow_override=True)


@dataclass(frozen=True)
class Demo:
    """The three demo layers, all in EPSG:4326."""

    districts: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    centers: gpd.GeoDataFrame


def build_demo(seed: int = 20261127) -> Demo:
    """Build the demo districts, grids and service centres.

    Parameters
    ----------
    seed : int
        Seed of the random generator; the same seed gives identical output.

    Returns
    -------
    Demo
        About 8,500 grids in 153 streets and 2,500 communities, plus district,
        street and community service centres, a few of which are missing.

    Examples
    --------
    >>> demo = build_demo()
    >>> len(demo.grids) >= 8000, sorted(demo.centers.level.unique())
    (True, ['community', 'district', 'street'])
    """
    rng = np.random.default_rng(seed)
    districts = load_districts()
    metric = districts.to_crs(_METRIC)
    cores = _metric_cores(_CORES)
    pops = np.array([_DISTRICTS[a][0] for a in districts.adcode], float)
    n_grids = np.round(_TOTAL_GRIDS * pops / pops.sum()).astype(int)
    weight = np.sqrt(pops * metric.area.to_numpy())  # rural districts have many small villages
    n_comms = np.round(_TOTAL_COMMUNITIES * weight / weight.sum()).astype(int)

    plans = [_ningbo_plan(a) for a in districts.adcode]
    parts = [_district_grids(rng, row, geom, cores, ng, nc, plan)
             for row, geom, ng, nc, plan in zip(districts.itertuples(), metric.geometry, n_grids, n_comms, plans)]
    return _assemble(rng, districts, metric, parts)


def load_province_districts() -> gpd.GeoDataFrame:
    """Return Zhejiang's 90 districts with their ``city`` (EPSG:4326, counter-clockwise shells)."""
    gdf = gpd.read_file(PROVINCE_DISTRICTS_PATH)[["adcode", "name", "name_en", "city", "geometry"]]
    gdf["geometry"] = shapely.orient_polygons(_round(gdf.geometry.values))
    return gdf.set_crs(_WGS84, allow_override=True)


def load_province_cities() -> gpd.GeoDataFrame:
    """Return the outlines of Zhejiang's 11 cities (EPSG:4326), simplified on their own: for overview maps."""
    return gpd.read_file(PROVINCE_CITIES_PATH)[["adcode", "name", "name_en", "geometry"]].set_crs(
        _WGS84, allow_override=True)


def build_province_demo(seed: int = 20261202) -> Demo:
    """Build the Zhejiang demo: 11 cities, 90 districts, about 85,000 grids and 24,000 centres.

    Every district gets the Ningbo demo's treatment (cores, streets, communities,
    grid types, staffing gaps, a few missing centres), scaled to its residents;
    Ningbo's ten districts keep their real street names.  Grids and centres
    carry ``city``.  The same seed gives identical output.
    """
    rng = np.random.default_rng(seed)
    districts = load_province_districts()
    metric = districts.to_crs(_METRIC)
    geoms = metric.geometry.to_numpy()
    cores = _metric_cores(np.vstack([_CORES, _CITY_CORES]))
    # a county seat in every district that has no core yet, at the centre of its largest inscribed circle
    bare = ~np.array([shapely.contains_xy(g, *cores[:, :2].T).any() for g in geoms])
    seats = shapely.get_coordinates(shapely.get_point(shapely.maximum_inscribed_circle(geoms[bare], 100.0), 0))
    cores = np.vstack([cores, np.column_stack([seats, np.tile(_SEAT, (len(seats), 1))])])

    nb = districts.adcode.isin(list(_DISTRICTS)).to_numpy()
    pops = np.array([_DISTRICTS[a][0] if a in _DISTRICTS else _PROVINCE[a][0] for a in districts.adcode], float)
    area = metric.area.to_numpy()
    n_grids = np.round(_PROVINCE_GRIDS * pops / pops.sum()).astype(int)
    weight = np.sqrt(pops * area)  # as Ningbo's: rural districts have many small villages
    n_comms = np.minimum(np.round(_PROVINCE_COMMUNITIES * weight / weight.sum()).astype(int), n_grids // 2)
    n_streets = np.array([len(_DISTRICTS[a][3].split()) if a in _DISTRICTS else 0 for a in districts.adcode])
    rest = _PROVINCE_STREETS - n_streets.sum()
    n_streets[~nb] = np.maximum(4, np.round(rest * weight[~nb] / weight[~nb].sum())).astype(int)
    n_streets = np.minimum(n_streets, n_comms)

    parts = []
    for row, geom, ng, nc, ns in zip(districts.itertuples(), geoms, n_grids, n_comms, n_streets):
        if row.adcode in _DISTRICTS:
            plan = _ningbo_plan(row.adcode)
        else:
            pop_k, profile = _PROVINCE[row.adcode]
            plan = (pop_k, _PROVINCE_URBAN_SHARE[profile], profile, _street_names(rng, ns, profile))
        # only the cores whose kernel reaches the district: sampling draws around them
        near = shapely.distance(geom, shapely.points(cores[:, :2])) < 8000 * cores[:, 3]
        parts.append(_district_grids(rng, row, geom, cores[near], ng, nc, plan))
    return _assemble(rng, districts, metric, parts)


def _ningbo_plan(adcode: str) -> tuple:
    """A Ningbo district's plan for ``_district_grids``, from _DISTRICTS."""
    pop_k, urban_share, profile, street_names = _DISTRICTS[adcode]
    return pop_k, urban_share, profile, street_names.split()


def _metric_cores(cores: np.ndarray) -> np.ndarray:
    """Cores (lon, lat, peak, decay km) with their centres in metric coordinates."""
    xy = gpd.GeoSeries(gpd.points_from_xy(*cores[:, :2].T), crs=_WGS84).to_crs(_METRIC).get_coordinates()
    return np.column_stack([xy.to_numpy(), cores[:, 2:]])


def _street_names(rng, n: int, profile: str) -> list[str]:
    """``n`` distinct street / town / township names: 街道 first (the densest streets get them), 乡 last."""
    names: list[str] = []
    while len(names) < n:
        name = _STREET_A[rng.integers(len(_STREET_A))] + _STREET_B[rng.integers(len(_STREET_B))]
        if name not in names:
            names.append(name)
    streets, townships = (round(n * share) for share in _STREET_KINDS[profile])
    streets = max(streets, 1)
    return [name + ("街道" if i < streets else "乡" if i >= n - townships else "镇") for i, name in enumerate(names)]


def _assemble(rng, districts: gpd.GeoDataFrame, metric: gpd.GeoDataFrame, parts: list[pd.DataFrame]) -> Demo:
    """The grids of every district in lon/lat on the 1e-6° lattice, and their centres."""
    grids = pd.concat(parts, ignore_index=True)
    if "city" in districts:
        city = districts.set_index("name").city
        grids.insert(grids.columns.get_loc("district"), "city", city.loc[grids.district].to_numpy())
    geoms = gpd.GeoSeries(grids.pop("geometry"), crs=_METRIC).to_crs(_WGS84).to_numpy()
    shapely.prepare(districts.geometry.values)  # the metric ones were prepared per district
    where = districts.set_index("name").index.get_indexer(grids.district)
    geoms = _round_inside(geoms, districts.geometry.to_numpy()[where], metric.geometry.to_numpy()[where])
    bad = ~shapely.is_valid(geoms)  # rounding may collapse a vertex pair
    geoms[bad] = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
    grids = gpd.GeoDataFrame(grids, geometry=shapely.orient_polygons(geoms), crs=_WGS84)
    return Demo(districts, grids, _centers(rng, districts, grids))


def _round(geoms: np.ndarray) -> np.ndarray:
    # Rounding every vertex on its own keeps the edges neighbours share identical.
    return shapely.transform(geoms, lambda xy: np.round(xy, 6))


def _round_inside(geoms: np.ndarray, parents: np.ndarray, parents_m: np.ndarray) -> np.ndarray:
    """Round vertices to 1e-6°, moving any that rounding put outside the parent back in.

    Where a Voronoi edge meets the district boundary, rounding moves the crossing
    up to 7 cm, and a lon/lat-straight edge bows up to decimetres from the
    UTM-straight one on the long coastal segments; outwards, either turns into a
    sliver of many m² beyond the district.  So such a vertex goes to the nearest
    lattice point inside the district in both CRSs.  Shared vertices are treated
    alike in both neighbours, so shared edges stay identical.
    """
    to_metric = Transformer.from_crs(_WGS84, _METRIC, always_xy=True).transform
    xy = shapely.get_coordinates(geoms)
    count = shapely.get_num_coordinates(geoms)
    owner, owner_m = np.repeat(parents, count), np.repeat(parents_m, count)

    def inside(idx: np.ndarray, pts: np.ndarray) -> np.ndarray:
        x, y = pts[..., 0], pts[..., 1]
        return shapely.intersects_xy(owner[idx], x, y) & shapely.intersects_xy(owner_m[idx], *to_metric(x, y))

    lattice = np.rint(xy * 1e6)
    out = np.flatnonzero(~inside(np.arange(len(xy)), lattice / 1e6))
    # offsets go nearest first: try them a ring at a time, each vertex until one is inside
    for ring in np.split(np.arange(len(_OFFSETS)), _RINGS):
        if not len(out):
            break
        cand = lattice[out][:, None, :] + _OFFSETS[ring]
        ok = inside(out[:, None], cand / 1e6)
        fixed = ok.any(axis=1)
        lattice[out[fixed]] = cand[fixed, ok[fixed].argmax(axis=1)]
        out = out[~fixed]
    return shapely.set_coordinates(geoms.copy(), lattice / 1e6)


def _density(xy: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """Relative settlement density at metric points: 1 in the countryside."""
    dist = np.hypot(xy[:, None, 0] - cores[:, 0], xy[:, None, 1] - cores[:, 1])
    return 1 + (cores[:, 2] * np.exp(-dist / (cores[:, 3] * 1000))).sum(axis=1)


def _sample(rng, district, box, cores: np.ndarray, n_urban: int, n_rural: int) -> np.ndarray:
    """Seed points inside the district: exponential kernels around cores plus uniform."""
    x0, y0, x1, y1 = district.bounds
    mass = cores[:, 2] * cores[:, 3] ** 2
    urban, rural = np.empty((0, 2)), np.empty((0, 2))
    while len(urban) < n_urban or len(rural) < n_rural:
        which = rng.choice(len(cores), 20_000, p=mass / mass.sum())
        radius = rng.gamma(2.0, cores[which, 3] * 1000)  # radial law of exp(-r/s) in 2-D
        angle = rng.uniform(0, 2 * np.pi, len(which))
        cand = cores[which, :2] + radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
        urban = np.vstack([urban, cand[shapely.contains_xy(district, *cand.T)]])
        cand = rng.uniform((x0, y0), (x1, y1), (20_000, 2))
        rural = np.vstack([rural, cand[shapely.contains_xy(district, *cand.T)]])
    pts = np.vstack([urban[:n_urban], rural[:n_rural]])
    for _ in range(2):  # Lloyd steps spread out points that landed too close together
        cells = _voronoi(pts, box)
        cent = shapely.get_coordinates(shapely.centroid(cells))
        pts = np.where(shapely.contains_xy(district, *cent.T)[:, None], cent, pts)
    return pts


def _box(district):
    """The frame Voronoi diagrams of a district extend to (computed once: buffering is slow)."""
    return shapely.box(*district.buffer(2000).bounds)


def _voronoi(pts: np.ndarray, box) -> np.ndarray:
    return shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=box, ordered=True))


def _cluster(rng, xy: np.ndarray, k: int, iters: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """k-means snapped to members: cluster labels and each cluster's medoid index.

    A medoid is always nearest to itself, so no cluster ever becomes empty.
    """
    medoids = np.sort(rng.choice(len(xy), k, replace=False))
    for step in range(iters + 1):
        dx, dy = xy[:, None, 0] - xy[medoids, 0], xy[:, None, 1] - xy[medoids, 1]
        d2 = dx * dx + dy * dy  # the sum over a (n, k, 2) array, bit for bit, without it
        labels = d2.argmin(axis=1)
        if step == iters:
            return labels, medoids
        count = np.bincount(labels, minlength=k)
        centre = np.column_stack([np.bincount(labels, xy[:, i], k) / count for i in (0, 1)])
        dist = np.hypot(*(xy - centre[labels]).T)
        order = np.lexsort((dist, labels))
        medoids = order[np.r_[True, np.diff(labels[order]) != 0]]


def _rank_within(groups: np.ndarray, key: np.ndarray) -> np.ndarray:
    """1-based rank of each item by ``key`` inside its group."""
    order = np.lexsort((key, groups))
    start = np.r_[0, np.flatnonzero(np.diff(groups[order])) + 1]
    rank = np.arange(len(groups)) - np.repeat(start, np.diff(np.r_[start, len(groups)]))
    out = np.empty(len(groups), int)
    out[order] = rank + 1
    return out


def _optional(values) -> pd.Series:
    # object dtype keeps gaps as None; pandas' string dtype would turn them into NaN
    return pd.Series(list(values), dtype=object)


def _cn(n: int) -> str:
    """Chinese numeral for 1–99."""
    digits = "零一二三四五六七八九"
    tens, ones = divmod(n, 10)
    return ((digits[tens] if tens > 1 else "") + "十" if tens else "") + (digits[ones] if ones else "")


def _unique_names(rng, groups: np.ndarray, urban: np.ndarray) -> list[str]:
    """Two-character 社区 / 村 names, unique within each group."""
    names, seen = [], set()
    for group, is_urban in zip(groups, urban):
        first, second, suffix = (_URBAN_A, _URBAN_B, "社区") if is_urban else (_RURAL_A, _RURAL_B, "村")
        while (group, name := first[rng.integers(len(first))] + second[rng.integers(len(second))]) in seen:
            pass
        seen.add((group, name))
        names.append(name + suffix)
    return names


def _district_grids(rng, row, district, cores, n_grids: int, n_comms: int, plan: tuple) -> pd.DataFrame:
    """The grids of one district, attributes and clipped metric geometry.

    ``plan`` is (residents in thousands, share of seeds around the cores, type
    profile, street names with the densest first).
    """
    pop_k, urban_share, profile, street_names = plan
    n_urban = round(n_grids * urban_share)
    shapely.prepare(district)
    box = _box(district)
    pts = _sample(rng, district, box, cores, n_urban, n_grids - n_urban)
    cells = _voronoi(pts, box)
    cut = ~shapely.contains_properly(district, cells)
    cells[cut] = shapely.intersection(cells[cut], district)
    dens = _density(pts, cores)

    # Communities cluster grids, streets cluster communities; densest streets get the 街道 names.
    comm, comm_seed = _cluster(rng, pts, n_comms)
    street_of_comm, street_seed = _cluster(rng, pts[comm_seed], len(street_names))
    street_rank = np.empty(len(street_seed), int)
    street_rank[np.argsort(-dens[comm_seed][street_seed], kind="stable")] = np.arange(len(street_seed))
    street_of_comm = street_rank[street_of_comm]
    seat = np.zeros(n_comms, bool)
    seat[street_seed] = True
    comm_urban = (dens[comm_seed] > _URBAN) | seat
    seat_xy = pts[comm_seed][street_seed[np.argsort(street_rank)]]
    comm_no = _rank_within(street_of_comm, np.hypot(*(pts[comm_seed] - seat_xy[street_of_comm]).T))
    comm_names = np.array(_unique_names(rng, street_of_comm, comm_urban))
    grid_no = _rank_within(comm, np.hypot(*(pts - pts[comm_seed][comm]).T))

    street = street_of_comm[comm]
    urban = dens > _URBAN
    u = rng.random(n_grids)
    gtype = np.empty(n_grids, int)
    for flag in (True, False):
        cum = np.cumsum(_TYPE_P[profile, flag])
        gtype[urban == flag] = np.minimum(np.searchsorted(cum, u[urban == flag], side="right"), len(cum) - 1)

    # Residents grow with area and, more than proportionally, with density.
    raw = shapely.area(cells) / 1e6 * dens ** 1.5 * rng.lognormal(0, 0.3, n_grids) * _RESIDENT_SHARE[gtype]
    raw = np.minimum(raw, np.quantile(raw, 0.995))  # tame the odd oversized cell in a dense core
    pop = np.round(raw * pop_k * 1000 / raw.sum()).astype(int)
    names = comm_names[comm]
    return pd.DataFrame({
        "grid_id": [f"{row.adcode}-{s + 1:02d}-{c:03d}-{g:02d}"
                    for s, c, g in zip(street, comm_no[comm], grid_no)],
        "name": [f"{n}第{g}网格" for n, g in zip(names, grid_no)],
        "grid_type": _TYPES[gtype],
        "district": row.name,
        "street": np.array(street_names)[street],
        "community": names,
        "population": pop,
        "households": np.round(pop / rng.uniform(2.3, 2.8, n_grids)).astype(int),
        "party_members": np.round(pop * rng.uniform(0.03, 0.06, n_grids)).astype(int),
        "grid_workers": rng.choice(4, n_grids, p=(0.02, 0.40, 0.40, 0.18)),
        "instructor": _optional(None if rng.random() < 0.02 else
                                _SURNAMES[rng.integers(len(_SURNAMES))] + _GIVEN[rng.integers(len(_GIVEN))]
                                for _ in range(n_grids)),
        "party_branch": _optional(None if gap else f"{n}第{_cn(g)}党支部"
                                  for n, g, gap in zip(names, grid_no, rng.random(n_grids) < 0.01)),
        "geometry": cells,
    }).sort_values("grid_id", ignore_index=True)


def _centers(rng, districts: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """District, street and community centres, each in its unit's most populous grid."""
    rows = []
    levels = (("district", ["district"], (2000, 5000)),
              ("street", ["district", "street"], (500, 1500)),
              ("community", ["district", "street", "community"], (150, 600)))
    for level, keys, area in levels:
        top = grids.loc[grids.groupby(keys, sort=False)["population"].idxmax()]
        keep = rng.random(len(top)) < {"district": 1.0, "street": 0.96, "community": 0.95}[level]
        keep[rng.integers(len(top))] = False  # every level has at least one unit without a centre
        top = top[keep]
        ids = top.grid_id.str.split("-")
        rows.append(pd.DataFrame({
            "center_id": ["C-" + "-".join(p[:len(keys)]) for p in ids],
            "name": top[keys[-1]].to_numpy() + "党群服务中心",
            "level": level,
            **({"city": top.city.to_numpy()} if "city" in top else {}),
            "district": top.district.to_numpy(),
            "street": _optional(top.street if level != "district" else [None] * len(top)),
            "community": _optional(top.community if level == "community" else [None] * len(top)),
            "floor_area_m2": np.round(rng.uniform(*area, len(top)), 1),
            "geometry": _inside(rng, top.geometry.to_numpy()),
        }))
    return gpd.GeoDataFrame(pd.concat(rows, ignore_index=True), crs=_WGS84)


def _inside(rng, polys: np.ndarray, tries: int = 40) -> np.ndarray:
    """A rounded random point strictly inside each polygon (point on surface as fallback)."""
    bounds = shapely.bounds(polys)
    xy = np.round(rng.uniform(bounds[:, None, :2], bounds[:, None, 2:], (len(polys), tries, 2)), 6)
    hit = shapely.contains_xy(np.repeat(polys, tries).reshape(-1, tries), xy[..., 0], xy[..., 1])
    first = hit.argmax(axis=1)
    pts = shapely.points(xy[np.arange(len(polys)), first])
    pts[~hit.any(axis=1)] = _round(shapely.point_on_surface(polys[~hit.any(axis=1)]))
    return pts


DEMO_AUTHOR = "gridmap demo"


# the demos GRIDMAP_DEMO names, and their builders
DEMOS = {"ningbo": build_demo, "zhejiang": build_province_demo}


def install_if_empty(store: Store, which: str = "ningbo") -> bool:
    """Fill a store that has no data at all with the demo ``which`` (a key of DEMOS); True if it did.

    Every layer is validated like an upload before it is stored.  The lock
    makes several processes starting on one empty data dir install it once.
    """
    build = DEMOS[which]
    with store.lock("demo"):
        if any(store.current(name) for name in store.layer_names):
            return False
        demo = build()
        layers = {name: getattr(demo, name) for name in ("districts", "grids", "centers")}
        if which == "ningbo":  # a walking network for network catchments (geodata.demo_roads)
            from .demo_roads import build_roads

            layers["roads"] = build_roads(demo.grids)
        reports = {name: validate(frame, name) for name, frame in layers.items()}
        for name, report in reports.items():
            if not report.ok:
                raise RuntimeError(f"the demo {name} fail validation: {report.errors[:3]}")
        for name, report in reports.items():
            # a record, kept as written: in the service's default language
            message = says("demo.first_version", place=says(f"demo.place.{which}")).in_language(DEFAULT_LANGUAGE)
            store.write(name, report.data, author=DEMO_AUTHOR, message=message)
        return True
