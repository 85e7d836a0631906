"""Settings as data: name, default, help.  Read from options, then ``GRIDMAP_*`` variables.

The README's settings table lists every entry here (a test keeps it honest).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geodata.i18n import says


@dataclass(frozen=True)
class Setting:
    name: str  # the config key; the environment variable is GRIDMAP_<name>
    default: object
    help: str
    type: type = str

    @property
    def env(self) -> str:
        return f"GRIDMAP_{self.name}"


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _names(value) -> tuple[str, ...]:
    """A comma-separated list of names (or a list of them) as a tuple; empty for none."""
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(dict.fromkeys(p.strip() for p in parts if p and p.strip()))


class SettingError(ValueError):
    """A setting's value the service cannot work with: ``python -m server`` says so and does not start."""


def _zone(value) -> str:
    """An IANA time zone name (``Asia/Shanghai``); SettingError otherwise."""
    name = str(value).strip()
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise SettingError(says("setting.timezone", value=repr(value))) from None
    return name


def _distances(value) -> tuple[float, ...]:
    """Distances in metres, comma-separated (``300,500,1000``), increasing; SettingError otherwise."""
    from geodata.coverage import Params, life_circles
    from geodata.errors import BadRequest

    try:
        return Params(life_circles_m=life_circles(value)).life_circles_m
    except BadRequest as e:
        raise SettingError(says("setting.life_circles", reason=e.message)) from None


DEMOS = ("ningbo", "zhejiang")


def _catchment(value) -> str:
    """disc or network; SettingError otherwise."""
    text = str(value).strip().lower()
    if text not in ("disc", "network"):
        raise SettingError(says("setting.catchment", value=repr(value)))
    return text


def _demo(value) -> str | None:
    """Which demo fills an empty data directory: ningbo, zhejiang, or None for none.

    ``1``/``true``/``yes``/``on`` (the setting was a boolean) still mean ningbo.
    """
    if isinstance(value, bool):
        return "ningbo" if value else None
    text = str(value).strip().lower()
    if text in DEMOS:
        return text
    if text in ("1", "true", "yes", "on"):
        return "ningbo"
    if text in ("", "0", "false", "no", "off", "none"):
        return None
    raise SettingError(says("setting.demo", value=repr(value)))


SETTINGS = (
    Setting("DATA_DIR", "./gridmap-data", "where the embedded database (layers and their versions) and the "
            "service's own files are kept"),
    Setting("DATABASE_URL", "", "`postgresql://user:password@host/db` keeps layers and versions, users, sign-in "
            "limits, the audit log and the session key in PostgreSQL + PostGIS instead, shared by any number of "
            "instances (empty: the embedded database and files in the data directory)"),
    Setting("DATABASE_WAIT_S", 30.0, "seconds `python -m server` waits at start for a database it cannot reach "
            "yet (then it exits with an error, for systemd to start it again)", float),
    Setting("HOST", "127.0.0.1", "address `python -m server` listens on"),
    Setting("PORT", 5000, "port `python -m server` listens on", int),
    Setting("WORKERS", 2, "server processes (they share the data directory safely)", int),
    Setting("THREADS", 4, "threads per server process", int),
    Setting("ANALYSIS_THREADS", 0, "threads one analysis runs its geometry work in (coverage, tiling checks); "
                                   "0 = one a core, at most 4", int),
    Setting("DEMO", "ningbo", "the demo an empty data directory is filled with at start: ningbo (10 districts, "
            "8,500 grids), zhejiang (11 cities, 90 districts, 85,000 grids) or off (start empty)", _demo),
    Setting("PUBLIC_READ", True, "anyone may read; 0 = reading needs a signed-in user", _bool),
    Setting("RESTRICTED_FIELDS", "instructor,party_branch,party_members",
            "fields shown to signed-in users only (comma-separated; empty = none)", _names),
    Setting("SECRET_KEY", None, "signs browser sessions; set it in production (a random one is made otherwise)"),
    Setting("TRUSTED_PROXIES", 0, "proxies in front whose X-Forwarded-For names the client (sign-in limit, audit)",
            int),
    Setting("SECURE_COOKIES", False, "send cookies over HTTPS only (set it when the site is served over HTTPS)", _bool),
    Setting("BASEMAP", "osm", "base map: osm, tianditu, none, or a tile URL template with {z}/{x}/{y}"),
    Setting("TIANDITU_KEY", "", "API key for the Tianditu base map"),
    Setting("MAX_ITEMS", 10_000, "largest `limit` the items route accepts", int),
    Setting("MAX_UPLOAD_MB", 200, "largest upload accepted, in MiB (larger ones get 413)", int),
    Setting("MAX_JSON_MB", 2, "largest body any route but uploads accepts, in MiB (larger ones get 413)", int),
    Setting("PUBLIC_URL", "", "the service's public address, the base of every absolute link "
            "(https://host[:port][/prefix]); empty: the request's Host"),
    Setting("TRUSTED_HOSTS", None, "Host headers accepted (comma-separated; .example.com takes subdomains); "
            "others get 400. Empty: any", _names),
    Setting("CACHE_MB", 256, "memory for rendered map layers, pages and documents, in MiB a worker "
            "(map layers half, items pages and documents a quarter each)", int),
    Setting("TILE_SEED_ZOOM", 8, "vector tiles of zooms up to this one are cut at start and after each change, "
            "before anyone asks (-1: none)", int),
    Setting("MAX_VERTICES", 2_000_000, "most vertices an upload may have in all (more get 413)", int),
    Setting("MAX_FEATURE_VERTICES", 100_000, "most vertices one feature of an upload may have (more get 413)", int),
    Setting("MAX_TEXT_CHARS", 10_000, "longest text value an upload may have, in characters (longer get 413)", int),
    Setting("CORS_ORIGINS", "*", "origins whose pages may read /api cross-site (comma-separated, * any, empty none)"),
    Setting("RADIUS_COMMUNITY_M", 1000.0, "catchment radius of a community centre, metres", float),
    Setting("RADIUS_STREET_M", 2500.0, "catchment radius of a street centre, metres", float),
    Setting("RADIUS_DISTRICT_M", 5000.0, "catchment radius of a district centre, metres", float),
    Setting("COVERED_RATIO", 0.9, "a grid is covered from this share of its area in a catchment", float),
    Setting("PARTIAL_RATIO", 0.1, "... partial from this share, uncovered below it", float),
    Setting("SLIVER_M2", 100.0, "tiling gaps and overlaps smaller than this are ignored, m²", float),
    Setting("CATCHMENT", "disc", "a centre's catchment: disc (its level's radius as the crow flies) or network (the "
            "land near the walkable roads it reaches within that radius; discs while there is no roads layer)",
            _catchment),
    Setting("WALK_ACCESS_M", 100.0, "network catchments: the land within this many metres of a road reached", float),
    Setting("LIFE_CIRCLES_M", (300.0, 500.0, 1000.0), "network catchments: the walking distances (comma-separated, "
            "metres) whose reach the summaries count people within and the map draws", _distances),
    Setting("PUBLIC_WHATIF", False, "1 = anyone may ask for what-ifs (other radii or thresholds, proposed centres); "
                                    "0 = they need a signed-in user", _bool),
    Setting("MAX_RADIUS_M", 10_000.0, "largest catchment radius a what-if may ask for, metres (larger ones get 400)",
            float),
    Setting("JOB_PROCESSES", 1, "processes per server process for heavy work (what-ifs, recommendations, "
                                "upload checks)", int),
    Setting("JOB_TIMEOUT_S", 60.0, "a heavy job is stopped after this many seconds (the answer is 503)", float),
    Setting("JOB_MEMORY_MB", 2048, "address space a job process may use, MiB (over it the answer is 422)", int),
    Setting("JOB_QUEUE", 4, "heavy jobs running or waiting per server process; more get 503 with Retry-After", int),
    Setting("TIMEZONE", "Asia/Shanghai", "time zone of the times pages show (IANA name); the API keeps UTC", _zone),
    Setting("LANG", "", "the language of what python -m server prints: zh or en; empty: the locale's (LC_ALL, "
            "LC_MESSAGES, LANG), else Chinese. Pages and API answers follow each request", str),
)


def analysis_params(config: dict):
    """The coverage analysis settings (radii, thresholds, tolerance) as geodata's Params."""
    from geodata.coverage import Params

    return Params(radius_community_m=config["RADIUS_COMMUNITY_M"], radius_street_m=config["RADIUS_STREET_M"],
                  radius_district_m=config["RADIUS_DISTRICT_M"], covered_ratio=config["COVERED_RATIO"],
                  partial_ratio=config["PARTIAL_RATIO"], sliver_m2=config["SLIVER_M2"],
                  catchment=config["CATCHMENT"], walk_access_m=config["WALK_ACCESS_M"],
                  life_circles_m=config["LIFE_CIRCLES_M"])


def load(overrides: dict | None = None, environ=os.environ) -> dict:
    """Defaults, then GRIDMAP_* variables, then ``overrides`` (options or a test's config)."""
    config = {}
    for s in SETTINGS:
        value = environ.get(s.env, s.default)
        if overrides and overrides.get(s.name) is not None:
            value = overrides[s.name]
        config[s.name] = None if value is None else s.type(value)
    for key, value in (overrides or {}).items():  # Flask's own keys (TESTING, ...) pass through
        config.setdefault(key, value)
    return config
