"""The dashboard's pages (GET only: nothing here writes to Redis).

Handlers are plain functions: Starlette runs them in its thread pool, where the
sync client's calls are fine. Every value goes to a template, which escapes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ..errors import InvalidNameError
from ..manifest import POLICY_DEFAULTS, check_id, check_service
from . import data

if TYPE_CHECKING:
    from .app import Dashboard

DEAD_PAGE = 20
VERBS = {"requeue": "requeued", "purge": "purged"}


def _int(text: str | None, default: int = 0) -> int:
    try:
        return max(0, int(text or default))
    except ValueError:
        return default


def _message(request: Request) -> str:
    """The outcome of an action, rebuilt from known words and numbers only: a link
    someone sends cannot make the page say anything else."""
    q = request.query_params
    verb = VERBS.get(q.get("done", ""))
    if verb:
        return f"{verb} {_int(q.get('n'))} dead letters; {_int(q.get('left'))} remain"
    if q.get("done") == "policy":
        return "policy saved"
    return ""


def not_found(dash: Dashboard) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(request: Request, exc: Exception) -> Response:
        return dash.render(request, "message.html", status=404, title="Not found",
                           text="There is no such page.")
    return handler


def homing_error(dash: Dashboard) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A Redis that is away or refuses: a page that says so (503), not a traceback."""
    async def handler(request: Request, exc: Exception) -> Response:
        return dash.render(request, "message.html", status=503, title="Redis refused",
                           text=f"{getattr(exc, 'code', 'ERROR')}: {exc}")
    return handler


def routes(dash: Dashboard) -> list[Route]:
    def overview(request: Request) -> Response:
        rows, total = data.overview(dash.client, dash.history)
        daemons, _ = data.daemons(dash.client, [])
        workers = data.workers(dash.client)
        charts = {r.name: {"ready": dash.history.series(r.name, "ready"),
                           "enqueued": dash.history.rate_series(r.name, "enqueued"),
                           "completed": dash.history.rate_series(r.name, "completed")}
                  for r in rows}
        return dash.render(request, "overview.html", rows=rows, total=total, charts=charts,
                           queues=data.QUEUES,
                           beating=sum(d.age_s <= data.DAEMON_SILENCE for d in daemons),
                           alive=sum(w.alive for w in workers), live=True)

    def service(request: Request) -> Response:
        name = _service(request)
        offset = _int(request.query_params.get("offset"))
        return _service_page(dash, request, name, offset, _message(request), "")

    def event_lookup(request: Request) -> Response:
        q = request.query_params
        try:
            name, event_id = check_service(q.get("service", "")), check_id(q.get("id", "").strip())
        except InvalidNameError as exc:
            return dash.render(request, "message.html", status=400, title="Not an event id",
                               text=str(exc))
        return RedirectResponse(f"/service/{quote(name)}/event/{quote(event_id)}", 303)

    def event(request: Request) -> Response:
        name = _service(request)
        try:
            event_id = check_id(request.path_params["event_id"])
        except InvalidNameError as exc:
            return dash.render(request, "message.html", status=400, title="Not an event id",
                               text=str(exc))
        view = data.event(dash.client, name, event_id)
        return dash.render(request, "event.html", ev=view, service=name)

    def daemons(request: Request) -> Response:
        names, _ = data.services(dash.client)
        rows, lags = data.daemons(dash.client, names)
        return dash.render(request, "daemons.html", rows=rows, lags=lags, live=True,
                           silence=data.DAEMON_SILENCE)

    def workers(request: Request) -> Response:
        return dash.render(request, "workers.html", rows=data.workers(dash.client), live=True)

    def metrics(request: Request) -> Response:
        if dash.metrics is None:
            return PlainTextResponse("# /metrics needs homing.metrics.dashboard_metrics (the "
                                     "Prometheus part of issue 11), not installed here\n",
                                     status_code=501)
        body, content_type = dash.metrics(dash.client)
        return Response(body, media_type=content_type)

    def login(request: Request) -> Response:
        if dash.auth.token is None:
            return RedirectResponse("/", 303)
        return dash.render(request, "login.html", next=request.query_params.get("next", "/"),
                           error="")

    return [
        Route("/", overview),
        Route("/service/{service}", service),
        Route("/event", event_lookup),
        Route("/service/{service}/event/{event_id}", event),
        Route("/daemons", daemons),
        Route("/workers", workers),
        Route("/metrics", metrics),
        Route("/login", login, methods=["GET"]),
    ]


def _service(request: Request) -> str:
    try:
        return check_service(request.path_params["service"])
    except InvalidNameError as exc:
        raise HTTPException(404) from exc


def _service_page(dash: Dashboard, request: Request, name: str, offset: int, message: str,
                  error: str, status: int = 200) -> Response:
    """The service page; also what a refused policy change renders, with its error."""
    stats = dash.client.stats(name)
    page = dash.client.dead_list(name, offset, DEAD_PAGE)
    letters = [{"id": d.id, "died": d.died_ms, "attempt": d.attempt, "reason": d.reason,
                "payload": data.preview(d.raw)} for d in page.letters]
    now = data.now_ms(dash.client)
    policy = {f: stats.get(f"policy.{f}") for f in POLICY_DEFAULTS}
    totals = {k[6:]: v for k, v in stats.items() if k.startswith("total.")}
    registered = name in dash.client.services()
    return dash.render(
        request, "service.html", status=status, name=name, stats=stats, queues=data.QUEUES,
        totals=totals, policy=policy, defaults=POLICY_DEFAULTS, letters=letters,
        total_dead=page.total, offset=offset, page=DEAD_PAGE, message=message, error=error,
        oldest=data.oldest_ready_age(stats, now), registered=registered,
        ready_series=dash.history.series(name, "ready"))


def service_page(dash: Dashboard, request: Request, name: str, error: str) -> Response:
    return _service_page(dash, request, name, 0, "", error, status=400)
