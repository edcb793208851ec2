"""The dashboard's Starlette application: the guard every request passes, and the sampler.

``create_app`` wires the pieces: ``views`` (the pages), ``actions`` (the POSTs:
policy, requeue, purge, login) and ``security`` (auth, CSRF, the Host check).
The sync ``Client`` is used from Starlette's thread pool: a page is a handful of
short Redis calls, and the same client code the CLI runs is the one shown.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..client import Client
from ..errors import HomingError
from . import actions, views
from .data import History, sample_all
from .security import (
    CSRF_COOKIE,
    Auth,
    Keys,
    authorized,
    host_name,
    is_loopback,
    new_cookie_value,
)

HERE = Path(__file__).resolve().parent
log = logging.getLogger("homing.web")


@dataclass
class Dashboard:
    """What every handler needs: the client, the settings and the shared state."""

    client: Client
    auth: Auth
    read_only: bool
    keys: Keys = field(default_factory=Keys)
    history: History = field(default_factory=History)
    templates: Jinja2Templates | None = None
    metrics: Callable[[Client], tuple[bytes, str]] | None = None

    def render(self, request: Request, template: str, status: int = 200,
               **context: Any) -> Response:
        assert self.templates is not None
        context.update(read_only=self.read_only, csrf=self.keys.csrf_for(request.state.csrf),
                       auth=self.auth)
        return self.templates.TemplateResponse(request, template, context, status_code=status)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _when(ms: int | None) -> str:
    if ms is None:
        return "–"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[
        :-3] + "Z"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _spark(values: list[float], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for a small chart (numbers only, so nothing to escape)."""
    if len(values) < 2:
        return ""
    top = max(values) or 1.0
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - (v / top) * (height - 2) - 1:.1f}"
                    for i, v in enumerate(values))


def templates() -> Jinja2Templates:
    # autoescape=True for every template, whatever its name: every value from Redis is
    # escaped unless a template says otherwise, and none does.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(ago=_ago, when=_when, rate=_rate, spark=_spark)
    return Jinja2Templates(env=env)


class Guard(BaseHTTPMiddleware):
    """Host check (without auth), authentication, and the CSRF cookie, on every request."""

    def __init__(self, app: Any, dash: Dashboard) -> None:
        super().__init__(app)
        self.dash = dash

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        dash = self.dash
        if not dash.auth.enabled and not is_loopback(host_name(request.headers.get("host", ""))):
            return PlainTextResponse("this dashboard has no auth and answers only requests to "
                                     "localhost (see docs/dashboard.md)", status_code=403)
        cookie = request.cookies.get(CSRF_COOKIE)
        fresh = not cookie or len(cookie) != 32
        request.state.csrf = new_cookie_value() if fresh else cookie
        path = request.url.path
        public = path.startswith("/static/") or path == "/login"
        if not public and not authorized(dash.auth, dash.keys, request.headers, request.cookies):
            response = self.refuse(request)
        else:
            response = await call_next(request)
        if fresh:
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True,
                                samesite="strict", path="/")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'")
        return response

    def refuse(self, request: Request) -> Response:
        if self.dash.auth.token is not None:
            return self.dash.render(request, "login.html", status=401,
                                    next=request.url.path, error="")
        return PlainTextResponse("authentication required", status_code=401,
                                 headers={"WWW-Authenticate": 'Basic realm="homing"'})


def metrics_provider() -> Callable[[Client], tuple[bytes, str]] | None:
    """THE /metrics HOOK: ``homing.metrics`` (the Prometheus part of issue 11) serves it.

    Looks for ``homing.metrics.dashboard_metrics(client) -> (body, content_type)``;
    until that module provides it, /metrics answers 501 and says so.
    """
    try:
        from .. import metrics  # type: ignore[attr-defined]
    except ImportError:
        return None
    found = getattr(metrics, "dashboard_metrics", None)
    return found if callable(found) else None


def create_app(client: Client, *, auth: Auth | None = None, read_only: bool = False,
               sample_every: float = 10.0) -> Starlette:
    """The dashboard on ``client``; ``sample_every`` paces the charts' sampler (seconds)."""
    dash = Dashboard(client, auth or Auth(), read_only, history=History(sample_every),
                     templates=templates(), metrics=metrics_provider())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()

        def sample() -> None:
            while True:
                try:
                    sample_all(client, dash.history)
                except HomingError as exc:  # Redis away: the charts get a gap
                    log.warning("dashboard sampler: %s", exc)
                if stop.wait(sample_every):
                    return

        thread = threading.Thread(target=sample, name="homing-dashboard-sampler", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    routes = [*views.routes(dash), *actions.routes(dash),
              Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, dash=dash)],
                    lifespan=lifespan, exception_handlers={404: views.not_found(dash),
                                        HomingError: views.homing_error(dash)})
    app.state.dashboard = dash
    return app


__all__ = ["Dashboard", "create_app", "metrics_provider"]
