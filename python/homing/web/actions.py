"""The dashboard's actions (every POST): policy, requeue and purge of dead letters, login.

Each goes through ``checked``: refused in read-only mode (login aside), refused
with a foreign Origin, and refused without the CSRF token of the form it came
from. Requeue and purge ask first: the first POST renders a confirmation page,
only the second (``confirm=yes``) acts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote, urlparse

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ..errors import InvalidArgumentError, InvalidNameError
from ..manifest import MAX_BATCH, POLICY_DEFAULTS, check_id
from . import views
from .security import CSRF_COOKIE, SESSION_COOKIE, token_ok

if TYPE_CHECKING:
    from .app import Dashboard

BULK_CALLS = 10  # "all" moves at most this many batches of 1000 per click; the rest remain
Handler = Callable[[Request, FormData], Response]


def checked(dash: Dashboard, handler: Handler, *,
            writes: bool = True) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if writes and dash.read_only:
            return PlainTextResponse("this dashboard is read-only (--read-only)", 403)
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlparse(origin).netloc != request.headers.get(
                "host"):
            return PlainTextResponse("refused: the request came from another site", 403)
        form = await request.form()
        token = form.get("csrf")
        if not isinstance(token, str) or not dash.keys.csrf_ok(request.cookies.get(CSRF_COOKIE),
                                                               token):
            return PlainTextResponse("refused: the CSRF token is missing or wrong (reload the "
                                     "page and try again)", 403)
        return await run_in_threadpool(handler, request, form)
    return endpoint


def _number(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"{field} must be a number, got {text!r}") from exc
    return int(value) if value.is_integer() and field != "backoff_jitter" else value


def routes(dash: Dashboard) -> list[Route]:
    def policy(request: Request, form: FormData) -> Response:
        name = views._service(request)
        changes: dict[str, float | None] = {}
        reset = set(form.getlist("reset"))
        try:
            for field in POLICY_DEFAULTS:
                text = form.get(field)
                if field in reset:
                    changes[field] = None
                elif isinstance(text, str) and text.strip():
                    changes[field] = _number(text.strip(), field)
            if changes:
                dash.client.configure(name, **changes)
        except InvalidArgumentError as exc:
            return views.service_page(dash, request, name, str(exc))
        return RedirectResponse(f"/service/{quote(name)}?done=policy", 303)

    def dead(request: Request, form: FormData) -> Response:
        name = views._service(request)
        verb = request.path_params["verb"]
        if verb not in views.VERBS:
            return PlainTextResponse("no such action", 404)
        try:
            ids = [check_id(str(i)) for i in form.getlist("id")][:MAX_BATCH]
        except InvalidNameError as exc:
            return PlainTextResponse(str(exc), 400)
        all_ = form.get("all") == "1"
        if bool(ids) == all_:
            return PlainTextResponse("name dead letters, or all (not both)", 400)
        total = dash.client.dead_list(name, 0, 1).total
        if form.get("confirm") != "yes":
            return dash.render(request, "confirm.html", name=name, verb=verb, ids=ids,
                               all=all_, total=total)
        action = dash.client.dead_requeue if verb == "requeue" else dash.client.dead_purge
        done, left = _run(action, name, ids, total)
        return RedirectResponse(f"/service/{quote(name)}?done={verb}&n={done}&left={left}", 303)

    def login(request: Request, form: FormData) -> Response:
        given = form.get("token")
        target = form.get("next")
        # Only a path of this site: never a redirect to another one.
        if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
            target = "/"
        if dash.auth.token is None or not isinstance(given, str) or not token_ok(dash.auth,
                                                                                   given):
            return dash.render(request, "login.html", status=401, next=target,
                               error="wrong token")
        response = RedirectResponse(target, 303)
        response.set_cookie(SESSION_COOKIE, dash.keys.session_for(dash.auth.token),
                            httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    return [
        Route("/service/{service}/policy", checked(dash, policy), methods=["POST"]),
        Route("/service/{service}/dead/{verb}", checked(dash, dead), methods=["POST"]),
        Route("/login", checked(dash, login, writes=False), methods=["POST"]),
    ]


def _run(action: Callable[..., tuple[int, int]], name: str, ids: list[str],
         total: int) -> tuple[int, int]:
    """(done, remaining): the named ids, or the ``total`` oldest letters in bounded batches."""
    if ids:
        return action(name, ids)
    done, left = 0, total
    for _ in range(BULK_CALLS):
        if done >= total:
            break
        n, left = action(name, count=min(MAX_BATCH, total - done))
        if n == 0:
            break
        done += n
    return done, left

