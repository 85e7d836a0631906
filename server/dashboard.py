"""The dashboard: coverage and gap summaries as tables and charts."""

from __future__ import annotations

from flask import Blueprint, render_template

blueprint = Blueprint("dashboard", __name__)


@blueprint.get("/dashboard")
def dashboard():
    return render_template("dashboard.html")
