"""``homing dashboard``: a web view of every service, with safe actions on dead letters.

An optional part (``pip install 'homing[web]'``: Starlette, uvicorn, Jinja2); the
rest of homing never imports it. See docs/dashboard.md.
"""

from __future__ import annotations

from .app import create_app
from .security import Auth, SetupError

__all__ = ["Auth", "SetupError", "create_app"]
