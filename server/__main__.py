"""``python -m server``: serve gridmap with a production server (gunicorn's asyncio worker, see ``front``).

``python -m server user add NAME --role editor [--scope district=海曙区] [--data-dir DIR] [--database-url URL]``
(and ``scope``, ``list``, ``remove``, ``reset``) manage users; a new token is printed on the last line.
``python -m server repair [--data-dir DIR]`` rebuilds damaged layer records of the old store.
``python -m server migrate [--data-dir DIR] [--database-url URL]`` imports the old store's layers.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from geodata.i18n import cli_language, in_language, text

from . import config

# what the commands print, in GRIDMAP_LANG, else the locale's language (LC_ALL, LC_MESSAGES, LANG), else Chinese
CLI_LANGUAGE = cli_language()


def _say(key: str, **params) -> str:
    return text(key, CLI_LANGUAGE).format(**params)


def _said(message) -> str:
    """A domain error's message in the command line's language (when it was made with ``says``)."""
    return in_language(message, CLI_LANGUAGE)


# argparse's own words, by its gettext msgids: said in the command line's language from our catalogues
ARGPARSE_WORDS = {
    "usage: ": "cli.argparse.usage",
    "positional arguments": "cli.argparse.positional",
    "options": "cli.argparse.options",
    "show this help message and exit": "cli.argparse.help",
    "%(prog)s: error: %(message)s\n": "cli.argparse.error",
    "the following arguments are required: %s": "cli.argparse.required",
    "unrecognized arguments: %s": "cli.argparse.unrecognized",
    "invalid choice: %(value)r (choose from %(choices)s)": "cli.argparse.invalid_choice",
    "invalid %(type)s value: %(value)r": "cli.argparse.invalid_value",
    "argument %(argument_name)s: %(message)s": "cli.argparse.argument",
    "expected one argument": "cli.argparse.expected_one",
}


def _argparse_word(message: str) -> str:
    key = ARGPARSE_WORDS.get(message)
    return text(key, CLI_LANGUAGE) if key else message



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server", description=_say("cli.help.serve"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_say("cli.help.other_commands") + ":\n"
               "  python -m server user {add,scope,list,remove,reset} ...\n"
               f"      {_say('cli.help.user')}\n"
               "  python -m server repair [--data-dir DIR]\n"
               f"      {_say('cli.help.repair')}\n"
               "  python -m server migrate [--data-dir DIR] [--database-url URL]\n"
               f"      {_say('cli.help.migrate')}")
    parser.add_argument("--host", help=_say("cli.help.host"))
    parser.add_argument("--port", type=int, help=_say("cli.help.port"))
    parser.add_argument("--data-dir", help=_say("cli.help.data_dir_demo"))
    parser.add_argument("--database-url", help=_say("cli.help.database_url"))
    parser.add_argument("--workers", type=int, help=_say("cli.help.workers"))
    return parser


def build_user_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server user", description=_say("cli.help.users"))
    parser.add_argument("--data-dir", help=_say("cli.help.data_dir"))
    parser.add_argument("--database-url", help=_say("cli.help.users_database_url"))
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help=_say("cli.help.user_add"))
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("viewer", "editor", "admin"))
    add.add_argument("--password", action="store_true", help=_say("cli.help.password"))
    add.add_argument("--scope", action="append", default=[], metavar="LEVEL=NAME[,LEVEL=NAME]",
                     help=_say("cli.help.scope"))
    scope = commands.add_parser("scope", help=_say("cli.help.user_scope"))
    scope.add_argument("name")
    scope.add_argument("scopes", nargs="*", metavar="LEVEL=NAME[,LEVEL=NAME]")
    commands.add_parser("list", help=_say("cli.help.user_list"))
    remove = commands.add_parser("remove", help=_say("cli.help.user_remove"))
    remove.add_argument("name")
    reset = commands.add_parser("reset", help=_say("cli.help.user_reset"))
    reset.add_argument("name")
    reset.add_argument("--password", action="store_true", help=_say("cli.help.new_password"))
    for sub in commands.choices.values():  # accepted after the command too, as people type it
        sub.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--database-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def manage_users(argv: list[str]) -> int:
    from geodata.errors import GridmapError

    from geodata.store.accounts import open_accounts

    from .users import UserStore

    args = build_user_parser().parse_args(argv)
    values = config.load({"DATA_DIR": args.data_dir, "DATABASE_URL": args.database_url})
    accounts = open_accounts(values["DATABASE_URL"] or values["DATA_DIR"])
    store = UserStore(accounts)
    try:
        accounts.import_files(values["DATA_DIR"])  # as the first start would: the data directory's users too
        if args.command == "add":
            user, token = store.add(args.name, args.role, _ask_password() if args.password else None, args.scope)
            print(_say("cli.user_created", role=_say(f"role.{user.role}"), name=user.name, scoped=_scoped(user)))
            print(token)
        elif args.command == "scope":
            user = store.set_scopes(args.name, args.scopes)
            print(_say("cli.may_change", name=user.name, scoped=_scoped(user) or _say("cli.everything")))
        elif args.command == "list":
            for user in store.all().values():
                print(f"{user.name}\t{user.role}\t{user.created}\t{_say('cli.password') if user.password_hash else ''}\t"
                      + "; ".join(map(str, user.areas)))
        elif args.command == "remove":
            store.remove(args.name)
            print(_say("cli.removed", name=args.name))
        elif args.command == "reset":
            token = store.reset(args.name, _ask_password() if args.password else None)
            print(_say("cli.new_token", name=args.name))
            print(token)
    except GridmapError as e:
        print(_say("cli.error", command="python -m server user", message=_said(e.message)), file=sys.stderr)
        return 1
    finally:
        accounts.close()
    return 0


def repair(argv: list[str]) -> int:
    """Rebuild every damaged layer record (manifest) of the old store from the version files present:
    a data directory not yet imported into the database (``migrate`` refuses a damaged one)."""
    from geodata.store import FileStore

    parser = argparse.ArgumentParser(prog="python -m server repair", description=_say("cli.help.repair_command"))
    parser.add_argument("--data-dir", help=_say("cli.help.data_dir"))
    args = parser.parse_args(argv)
    data_dir = config.load({"DATA_DIR": args.data_dir})["DATA_DIR"]
    if not (Path(data_dir) / "layers").is_dir():
        moved = _say("cli.moved") if (Path(data_dir) / "layers.migrated").is_dir() else ""
        print(_say("cli.error", command="python -m server repair",
                   message=_say("cli.no_layers", dir=data_dir, moved=moved)), file=sys.stderr)
        return 1
    done = FileStore(data_dir).repair()
    for line in done:
        print(_said(line))
    if not done:
        print(_say("cli.nothing_to_repair", dir=data_dir))
    return 0


def migrate(argv: list[str]) -> int:
    """Import the layers of the old store (one GeoJSON file a version) into the database."""
    from geodata.errors import DamagedStore, ServiceUnavailable
    from geodata.store import migrate as migration
    from geodata.store import open_store

    parser = argparse.ArgumentParser(prog="python -m server migrate", description=_say("cli.help.migrate_command"))
    parser.add_argument("--data-dir", help=_say("cli.help.data_dir"))
    parser.add_argument("--database-url", help=_say("cli.help.migrate_database_url"))
    args = parser.parse_args(argv)
    values = config.load({"DATA_DIR": args.data_dir, "DATABASE_URL": args.database_url})
    data_dir = values["DATA_DIR"]
    if not migration.pending(data_dir):
        print(_say("cli.nothing_to_import", dir=data_dir))
        return 0
    store = open_store(values.get("DATABASE_URL") or data_dir)
    try:
        lines = migration.migrate(data_dir, store)
    except (DamagedStore, ServiceUnavailable) as e:
        print(_say("cli.error", command="python -m server migrate", message=_said(e.message)), file=sys.stderr)
        return 1
    finally:
        store.close()
    for line in lines:
        print(_said(line))
    return 0


def _scoped(user) -> str:
    return _say("cli.scoped", areas="; ".join(map(str, user.areas))) if user.areas else ""


def _ask_password() -> str:
    if sys.stdin.isatty():
        import getpass

        first, second = getpass.getpass(_say("cli.password_prompt")), getpass.getpass(_say("cli.again_prompt"))
        if first != second:
            raise SystemExit(_say("cli.error", command="python -m server user", message=_say("cli.passwords_differ")))
        return first
    return sys.stdin.readline().rstrip("\n")  # scripts pipe it in


def warm_up(app, follow: bool = False) -> None:
    """Compute the analysis, the tile sources and place names the map's first view asks for, the search
    index and the low zooms' tiles (``GRIDMAP_TILE_SEED_ZOOM``), so the first planner to open the map need not
    wait (a province's take seconds each).  ``follow``: seed those tiles again after each change, for as long
    as the process runs."""
    from geodata import tiles
    from geodata.cache import release_freed_memory

    from .tiles import Seeder

    client = app.test_client()
    bounds = app.extensions["gridmap"].catalog.get("grids").features.bounds
    if bounds:
        lon, lat = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
        for collection in WARM_TILES:  # one tile each below and at the grids' zoom: what a view starts with
            for z in (tiles.MIN_ZOOM["grids"] - 3, tiles.MIN_ZOOM["grids"] + 1):
                x, y = tiles.tile_of(lon, lat, z)
                client.get(f"/api/collections/{collection}/tiles/{tiles.TMS}/{z}/{y}/{x}")
        for level in tiles.LABELS:
            client.get(f"/map/labels/{level}.json", query_string={"bbox": ",".join(map(str, bounds))})
    client.get("/api/search", query_string={"q": "网格"})  # its index: seconds to build for a province
    seeder = Seeder(app, WARM_TILES, app.config["TILE_SEED_ZOOM"])
    try:
        seeder.seed()
    except Exception:  # a database away a moment: tiles are cut when asked for, and seeded again later
        app.logger.exception("seeding tiles")
    if follow and seeder.max_zoom >= 0:
        app.extensions["gridmap_seeder"] = seeder
        seeder.follow()
    release_freed_memory()  # what building them freed
    app.extensions.setdefault("gridmap_warm", threading.Event()).set()  # /healthz says so


WARM_TILES = ("coverage", "gaps", "districts", "streets", "communities", "centers")  # what the map draws


def serve(options: dict) -> None:
    from gunicorn.app.base import BaseApplication

    from . import create_app, front

    values = config.load(options)
    if values["DATABASE_URL"]:  # started before its database (a machine booting): wait a while for it
        from geodata.store.postgis import wait_until_reachable

        wait_until_reachable(values["DATABASE_URL"], values["DATABASE_WAIT_S"],
                             lambda line: print(f"gridmap: {_said(line)}", flush=True))
    app = create_app(options)  # once, before forking: the demo is installed a single time
    app.extensions["gridmap_warm"] = threading.Event()  # each worker's copy set by its own warm-up

    def start_jobs(server, worker):
        """Each worker's own job processes and its analysis, started in the background once it has forked
        (never before): it answers at once (a province's analysis takes a minute; requests that need it
        wait for this one computation, never start another)."""
        threading.Thread(target=app.extensions["gridmap"].jobs.warm, name="gridmap-jobs-warm", daemon=True).start()
        threading.Thread(target=warm_up, args=(app, True), name="gridmap-warm-up", daemon=True).start()

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{app.config['HOST']}:{app.config['PORT']}")
            self.cfg.set("workers", app.config["WORKERS"])
            # an event loop reads whole requests; THREADS threads a worker run the app (front.asgi_app)
            self.cfg.set("worker_class", front.Worker)
            self.cfg.set("keepalive", front.KEEPALIVE_S)
            self.cfg.set("asgi_lifespan", "off")
            self.cfg.set("asgi_loop", "asyncio")  # the same loop whether or not uvloop happens to be installed
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 120)
            self.cfg.set("control_socket_disable", True)  # one per user otherwise: servers would share it
            self.cfg.set("post_fork", start_jobs)

        def load(self):  # in each worker, after the fork: its threads start there
            return front.asgi_app(app)

    where = getattr(app.extensions["gridmap"].store, "name", None) if values["DATABASE_URL"] else None
    print(_say("cli.serving", where=where or app.config["DATA_DIR"], host=app.config["HOST"], port=app.config["PORT"]),
          flush=True)
    Server().run()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["user"]:
        return manage_users(argv[1:])
    if argv[:1] == ["repair"]:
        return repair(argv[1:])
    if argv[:1] == ["migrate"]:
        return migrate(argv[1:])
    args = build_parser().parse_args(argv)
    if args.port is not None and not 0 < args.port < 65536:
        print(_say("cli.error", command="python -m server", message=_say("cli.bad_port", port=args.port)), file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print(_say("cli.error", command="python -m server", message=_say("cli.bad_workers", workers=args.workers)),
              file=sys.stderr)
        return 2
    from geodata.errors import DamagedStore, ServiceUnavailable

    from .config import SettingError

    try:
        serve({"HOST": args.host, "PORT": args.port, "DATA_DIR": args.data_dir, "DATABASE_URL": args.database_url,
               "WORKERS": args.workers})
    except (DamagedStore, ServiceUnavailable) as e:  # a database still down after the wait: systemd restarts it
        print(_say("cli.error", command="python -m server", message=_said(e.message)), file=sys.stderr)
        return 1
    except SettingError as e:
        print(_say("cli.error", command="python -m server", message=_said(e.args[0] if e.args else e)),
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    argparse._ = _argparse_word  # argparse looks its words up through gettext's ``_``: ours, in this process only
    sys.exit(main())
