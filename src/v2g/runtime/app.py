"""The web application the platform serves: the API under /api/v1 and the portal at /."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from v2g.api.app import create_app
from v2g.bootstrap import Platform
from v2g.web import install_portal


def build_app(platform: Platform, *, demo_logins: Sequence[tuple[str, str, str]] = ()) -> FastAPI:
    """The API app with the portal installed; ``demo_logins`` ((username, password, role), demo database
    only) are shown on the portal's sign-in page."""
    app = create_app(platform)
    install_portal(app, demo_logins)
    return app
