"""``homing dashboard``: the click command (importable without the web extra).

Starlette, uvicorn and Jinja2 are imported only when the command runs, so that a
plain ``pip install homing`` still lists the command and says what to install.
"""

from __future__ import annotations

import click

from ..cliutil import Settings

DEFAULT_PORT = 8377


@click.command()
@click.option("--bind", envvar="HOMING_DASHBOARD_BIND", default="127.0.0.1", show_default=True,
              help="Address to listen on. Without auth only a loopback address is accepted.")
@click.option("--port", envvar="HOMING_DASHBOARD_PORT", type=click.IntRange(0, 65535),
              default=DEFAULT_PORT, show_default=True, help="Port to listen on.")
@click.option("--read-only", envvar="HOMING_DASHBOARD_READ_ONLY", is_flag=True,
              help="Show everything, change nothing: no policy edits, requeues or purges.")
@click.option("--sample-every", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="Seconds between the samples behind the charts (kept in this process).")
@click.pass_obj
def dashboard(s: Settings, bind: str, port: int, read_only: bool, sample_every: float) -> None:
    """Serve the web dashboard: services, dead letters, events, daemons and workers.

    Auth comes from the environment: HOMING_DASHBOARD_TOKEN, or HOMING_DASHBOARD_USER
    and HOMING_DASHBOARD_PASSWORD. Without either it listens on loopback only.
    See docs/dashboard.md.
    """
    try:
        import uvicorn

        from .app import create_app
        from .security import Auth, SetupError, check_bind
    except ImportError as exc:
        raise click.ClickException(
            f"the dashboard needs the web extra: pip install 'homing[web]' ({exc})") from exc
    try:
        auth = Auth.from_env()
        check_bind(bind, auth)
    except SetupError as exc:
        raise click.UsageError(str(exc)) from exc
    client = s.client()
    client.services()  # fail fast on a wrong URL, before announcing a URL that cannot work
    app = create_app(client, auth=auth, read_only=read_only, sample_every=sample_every)
    host = f"[{bind}]" if ":" in bind else bind
    how = "token or user/password" if auth.enabled else "no auth, loopback only"
    click.echo(f"homing dashboard on http://{host}:{port}/ (prefix {s.prefix}, {how}"
               f"{', read-only' if read_only else ''})", err=True)
    uvicorn.run(app, host=bind, port=port, log_level="warning", access_log=False,
                server_header=False)
