"""gridmap's web application: thin Flask adapters over ``geodata`` and ``maps``."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from flask import Flask, current_app
from flask_compress import Compress

from geodata import coverage
from geodata.cache import VersionCache
from geodata.catalog import Catalog
from geodata.jobs import JobPool
from geodata.store import Store, migrate, open_store
from geodata.store.accounts import open_accounts
from geodata.tiles import TileVersions
from maps.coverage_map import Basemap

from . import bodies, hosts
from . import config as settings
from .config import analysis_params


@dataclass(frozen=True)
class Services:
    """What routes reach through ``app.extensions["gridmap"]``."""

    store: Store
    catalog: Catalog
    display: VersionCache  # light map layers, per layer version
    responses: VersionCache  # rendered documents (summaries, downloads), per analysis or version
    pages: VersionCache  # items pages and tiles, per data version and URL (so a strong ETag names exact bytes)
    tile_sources: VersionCache  # collections ready to cut into vector tiles, per version and audience
    tile_versions: TileVersions  # tile bytes (in ``pages``), carried across versions where an edit changed nothing
    basemap: Basemap
    jobs: JobPool  # heavy work (what-ifs, recommendations, upload checks), bounded; started at its first job


def services() -> Services:
    return current_app.extensions["gridmap"]


def create_app(config: dict | None = None) -> Flask:
    """Build the app from defaults, ``GRIDMAP_*`` variables and ``config`` (options or a test's)."""
    values = settings.load(config)
    app = Flask(__name__)
    app.config.update(values)
    app.config["MAX_CONTENT_LENGTH"] = values["MAX_UPLOAD_MB"] * 2**20  # larger requests get 413
    hosts.register(app)  # PUBLIC_URL and TRUSTED_HOSTS: the first request hook (a refused Host stops all)
    bodies.register(app)  # JSON provider, and MAX_JSON_MB for every route but uploads: first of the hooks
    # gzip text responses on the fly; map data is gzipped once per version instead (see pages._send)
    app.config.setdefault("COMPRESS_MIMETYPES", ["text/html", "text/css", "text/csv", "text/javascript",
                                                 "application/javascript", "application/json",
                                                 "application/geo+json", "application/vnd.google-earth.kml+xml",
                                                 "application/vnd.oai.openapi+json", "application/schema+json",
                                                 "application/vnd.mapbox-vector-tile"])
    app.config.setdefault("COMPRESS_ALGORITHM", "gzip")
    # level 1 (nginx's default): a page of 100 features in a third of level 6's time, a quarter larger
    app.config.setdefault("COMPRESS_LEVEL", 1)
    Compress(app)

    store = open_store(values["DATABASE_URL"] or values["DATA_DIR"])
    migrate.if_needed(values["DATA_DIR"], store)  # a data directory of the first store: imported once, whole
    store.check()  # a damaged store stops the start (DamagedStore names it), never half a service
    # users, sign-in counts, audit lines and the session key live where the layers do (shared by all instances)
    accounts = app.extensions["gridmap_accounts"] = open_accounts(store)
    accounts.import_files(values["DATA_DIR"])  # into a database: this directory's users and audit log, once
    app.config["SECRET_KEY"] = values["SECRET_KEY"] or accounts.secret()
    if values["DEMO"]:
        from geodata.demo import install_if_empty

        install_if_empty(store, values["DEMO"])
    basemap = Basemap.from_setting(values["BASEMAP"], values["TIANDITU_KEY"])  # a bad setting fails at start
    # before the job processes start: theirs too
    coverage.THREADS = values["ANALYSIS_THREADS"] if values["ANALYSIS_THREADS"] > 0 else coverage.default_threads()
    jobs = JobPool(processes=values["JOB_PROCESSES"], timeout_s=values["JOB_TIMEOUT_S"],
                   memory_mb=values["JOB_MEMORY_MB"], queue=values["JOB_QUEUE"],
                   waiters=max(1, values["THREADS"] - 2))  # two threads always left for readers
    # its processes end with the app (tests make many apps); at exit, pebble's own handler stops them
    weakref.finalize(app, jobs.close_later).atexit = False
    catalog = Catalog(store, analysis_params(values), jobs=jobs)
    # GRIDMAP_CACHE_MB split, not shared: pages and documents are keyed by what a client asks (any URL,
    # any radius), so a flood of them can only evict each other, never the map layers (dear to rebuild)
    budget = values["CACHE_MB"] * 2**20
    page_cache = VersionCache(None, max_bytes=budget // 4)
    app.extensions["gridmap"] = Services(
        store=store, catalog=catalog, basemap=basemap, jobs=jobs,
        display=VersionCache(None, max_bytes=budget // 2), responses=VersionCache(None, max_bytes=budget // 4),
        pages=page_cache, tile_sources=VersionCache(8),  # the map draws six collections
        tile_versions=TileVersions(page_cache))

    from . import (admin, api, assets, audit, auth, dashboard, editing, errors, feature_pages, headers, i18n, pages,
                   planning, privacy, tiles, transactions, uploads)

    auth.register(app)
    audit.register(app)
    privacy.register(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(tiles.blueprint)
    app.register_blueprint(uploads.blueprint)
    app.register_blueprint(transactions.blueprint)
    app.register_blueprint(planning.blueprint)
    app.register_blueprint(editing.blueprint)
    app.register_blueprint(feature_pages.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(assets.blueprint)
    app.register_blueprint(dashboard.blueprint)
    i18n.register(app)
    app.register_blueprint(pages.blueprint)
    errors.register(app)
    headers.register(app)
    return app
