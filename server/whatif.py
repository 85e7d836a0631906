"""What-if parameters (other radii, thresholds, tolerances): who may ask for them, and how far.

Each what-if is a new analysis (a job of a second or more), so they need a
signed-in user unless ``GRIDMAP_PUBLIC_WHATIF=1``, and radii stop at
``GRIDMAP_MAX_RADIUS_M``.
"""

from __future__ import annotations

from flask import current_app, request

from geodata.coverage import LEVELS, PARAM_NAMES, Params
from geodata.errors import BadRequest, Unauthorized
from geodata.i18n import says

from . import services
from .auth import current_user


def require_user(what: str) -> None:
    """401 for an anonymous request unless what-ifs are public."""
    if current_user() is None and not current_app.config["PUBLIC_WHATIF"]:
        raise Unauthorized(says("whatif.sign_in", what=what))


def params() -> Params:
    """The analysis settings with the request's what-if parameters (checked: user, bounds)."""
    asked = sorted(PARAM_NAMES & set(request.args))
    settings = services().catalog.params
    if not asked:
        return settings
    require_user(says("whatif.parameters", names=", ".join(asked)))
    _radius_limit(request.args)
    return settings.with_request(request.args.to_dict())  # 400 for what is not a number ≥ 0


def _radius_limit(args) -> None:
    """Radii over the setting's limit: 400 naming it (before geodata's own, wider bound)."""
    limit = current_app.config["MAX_RADIUS_M"]
    for level in LEVELS:
        name = f"radius_{level}_m"
        try:
            value = float(args.get(name, "nan"))
        except ValueError:
            continue  # not a number: Params says so
        if value > limit:
            raise BadRequest(says("whatif.radius", name=name, limit=f"{limit:g}", value=f"{value:g}"))
