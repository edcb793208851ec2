"""Plumbing of the ``homing`` command line: settings, the group class, output helpers.

Kept apart from ``cli`` so that the commands read as a list of commands.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import json
import logging
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from click.core import ParameterSource

from .client import DEFAULT_URL, DEFAULT_WAIT_TIMEOUT_MS, Client
from .consumer import Consumer
from .envelope import MAX_NESTING
from .errors import ConnectionLostError, HomingError, InvalidArgumentError, PayloadNotEncodableError
from .manifest import DEFAULT_PREFIX, MAX_BATCH

log = logging.getLogger("homing.cli")
BATCH = MAX_BATCH  # the largest batch a script accepts (lua/keys.json); bigger jobs loop


class Settings:
    """Connection settings shared by all commands; the client is only made on first use,
    so ``--help`` and usage errors never need a Redis."""

    def __init__(self) -> None:
        self.url = DEFAULT_URL
        self.prefix = DEFAULT_PREFIX
        self.explicit: set[str] = set()  # settings given on the command line or environment
        # TLS files (--tls-ca, --tls-cert, --tls-key): PEM paths, for a rediss:// URL.
        self.tls_ca: str | None = None
        self.tls_cert: str | None = None
        self.tls_key: str | None = None
        self.require_durable = False  # --require-durable: refuse a Redis that may lose events
        # --wait-replicas / --wait-timeout-ms: WAIT after each write (docs/failover.md)
        self.wait_replicas = 0
        self.wait_timeout_ms = DEFAULT_WAIT_TIMEOUT_MS
        self._client: Client | None = None

    def tls_kwargs(self) -> dict[str, str]:
        """The redis-py TLS keyword arguments of the --tls-* options (see docs/security.md)."""
        files = {"ssl_ca_certs": self.tls_ca, "ssl_certfile": self.tls_cert,
                 "ssl_keyfile": self.tls_key}
        given = {k: v for k, v in files.items() if v is not None}
        if given and urlsplit(self.url).scheme not in ("rediss", "rediss+sentinel"):
            raise click.UsageError("--tls-ca, --tls-cert and --tls-key need a rediss:// URL "
                                   "(TLS; rediss+sentinel:// for Sentinel); got "
                                   f"{safe_url(self.url)}")
        return given

    def client(self) -> Client:
        if self._client is None:
            try:
                self._client = Client.from_url(self.url, prefix=self.prefix,
                                               require_durable=self.require_durable,
                                               wait_replicas=self.wait_replicas,
                                               wait_timeout_ms=self.wait_timeout_ms,
                                               **self.tls_kwargs())
            except InvalidArgumentError as exc:  # a malformed URL, a database out of range
                raise InvalidArgumentError(f"--redis-url {safe_url(self.url)}: {exc}") from exc
            except HomingError:
                raise
            except ValueError as exc:  # redis-py's verdict on a malformed URL
                raise click.BadParameter(str(exc), param_hint="--redis-url") from exc
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def safe_url(url: str) -> str:
    """The URL without its passwords (a Sentinel URL's ``sentinel_password`` too), fit for an
    error message."""
    url = re.sub(r"(sentinel_password=)[^&#]*", r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            settings = ctx.ensure_object(Settings)
            setattr(settings, attr, value)
            if param.name and ctx.get_parameter_source(param.name) in (
                    ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
                settings.explicit.add(attr)
    return callback


def require_durable(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """--require-durable: only ever switches it on (a command's unset flag keeps the group's)."""
    if value:
        ctx.ensure_object(Settings).require_durable = True


REQUIRE_DURABLE_HELP = ("Refuse to run (exit 2) on a Redis that may lose acknowledged events: "
                        "an eviction policy, no AOF, or settings it will not show.")


def _connection_params() -> list[click.Parameter]:
    """The per-command copies of the group's options: they override it when given."""
    return [
        click.Option(["--redis-url"], callback=store("url"), expose_value=False,
                     help="Redis URL (overrides the group option)."),
        click.Option(["--prefix"], callback=store("prefix"), expose_value=False,
                     help="Key prefix (overrides the group option)."),
        click.Option(["--require-durable"], is_flag=True, callback=require_durable,
                     expose_value=False, help=REQUIRE_DURABLE_HELP),
        click.Option(["--wait-replicas"], type=click.IntRange(0, 1000),
                     callback=store("wait_replicas"), expose_value=False,
                     help="WAIT for N replicas (overrides the group option)."),
        click.Option(["--wait-timeout-ms"], type=click.IntRange(1, 86_400_000),
                     callback=store("wait_timeout_ms"), expose_value=False,
                     help="WAIT's timeout (overrides the group option)."),
    ]


def _explicit_group_url(otherwise: Any) -> Any:
    """The group's --redis-url if it was given (option or environment), else ``otherwise``."""
    root = click.get_current_context().find_root()
    given = root.get_parameter_source("redis_url") in (ParameterSource.COMMANDLINE,
                                                        ParameterSource.ENVIRONMENT)
    return root.ensure_object(Settings).url if given else otherwise


class HomingGroup(click.Group):
    """Adds the connection options to every subcommand and turns homing errors into exit 2."""

    group_class = type  # subgroups (``dead``) are HomingGroups too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        own = next((p for p in cmd.params if p.name == "redis_url"), None)
        if own is None:
            cmd.params.extend(_connection_params())
        elif not isinstance(own.default, str) and not callable(own.default):
            # A command with its own required --redis-url (conformance): still let
            # `homing --redis-url X cmd` and HOMING_REDIS_URL reach it.
            own.default = functools.partial(_explicit_group_url, own.default)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConnectionLostError as exc:
            url = safe_url(ctx.ensure_object(Settings).url)
            click.echo(f"error: {exc.code}: cannot reach Redis at {url}: {exc}", err=True)
        except HomingError as exc:
            click.echo(f"error: {exc.code}: {exc}", err=True)
        ctx.exit(2)


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when it emits (CliRunner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging(level: str) -> None:
    logger = logging.getLogger("homing")
    logger.setLevel(level.upper())
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


JSON_START = ("{", "[", '"')


def read_payload(text: str, as_string: bool = False) -> Any:
    """PAYLOAD as given: ``-`` reads stdin and ``@path`` a file (UTF-8).

    With ``as_string`` the text is sent as it is (less one trailing newline when read
    from stdin or a file). Otherwise it must be JSON, except that an argument that does
    not look like JSON (``hello world``) is sent as a plain string; one that does (it
    starts with ``{``, ``[`` or ``"``) but does not parse is an error, as is stdin or a
    file that does not parse: a typo must not turn an object into a string.
    """
    source = None  # where the text came from, for messages; None: the argument itself
    if text == "-" or text.startswith("@"):
        source = "stdin" if text == "-" else f"file {text[1:]!r}"
        try:
            if text == "-":
                binary = getattr(sys.stdin, "buffer", None)
                data = binary.read() if binary else sys.stdin.read().encode("utf-8")
            else:
                with open(text[1:], "rb") as f:
                    data = f.read()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {source}: {exc}", param_hint="PAYLOAD") from exc
    if as_string:
        if source is not None and text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
        return text
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        if source is None and not text.lstrip().startswith(JSON_START):
            return text
        raise click.BadParameter(_json_problem(text, exc, source), param_hint="PAYLOAD") from exc
    except RecursionError as exc:  # the json module recurses once per level
        raise PayloadNotEncodableError(
            f"PAYLOAD is nested deeper than the limit of {MAX_NESTING} levels of arrays and "
            "objects") from exc


def _finite(text: str) -> float:
    """A JSON number; 1e999 would become inf, which JSON cannot say either."""
    value = float(text)
    if not math.isfinite(value):
        raise InvalidArgumentError(f"PAYLOAD holds {text}, a number beyond a 64-bit float: "
                                   "send a smaller one, or a string")
    return value


def _no_constant(name: str) -> Any:
    """json.loads takes NaN, Infinity and -Infinity, which JSON does not have.

    Stored, they would arrive as floats no JSON reader (the JavaScript client's
    included) could print again; a producer who typed them meant something else.
    """
    raise InvalidArgumentError(f"PAYLOAD holds {name}, which is not JSON: send a number, "
                               "null or a string (--string sends the text as it is)")


def _json_problem(text: str, exc: json.JSONDecodeError, source: str | None) -> str:
    """The JSON error with the line it is on and a caret under the spot."""
    what = "the argument looks like JSON but" if source is None else source
    if not text.strip():
        return f"{what} is empty (add --string to send an empty string)"
    lines = text.splitlines()
    if exc.lineno > len(lines):  # past the last line: the text ends too early
        lineno, colno = len(lines), len(lines[-1]) + 1
    else:
        lineno, colno = exc.lineno, exc.colno
    line = lines[lineno - 1].replace("\t", " ")
    start = max(0, colno - 1 - 40)
    where = f"line {lineno} column {colno}" if len(lines) > 1 else f"column {colno}"
    return (f"{what} is not valid JSON: {exc.msg} ({where}):\n"
            f"    {line[start:start + 72]}\n    {' ' * (colno - 1 - start)}^\n"
            "To send the text as a plain string instead, add --string.")


string_option = click.option(
    "--string", "as_string", is_flag=True,
    help="Send PAYLOAD as a plain string, not as JSON.")

priority_option = click.option(
    "--priority", type=click.IntRange(0, 9), default=0, show_default=True,
    help="Priority level 0..9: ready events of a higher level are delivered first "
         "(FIFO within a level).")


def json_text(value: Any, **kw: Any) -> str:
    # msgpack payloads may hold bytes, which JSON cannot: show them as text.
    return json.dumps(value, ensure_ascii=False, default=lambda o: o.decode("utf-8", "replace")
                      if isinstance(o, bytes) else repr(o), **kw)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table; numbers are right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(r[i], int) for r in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    return "\n".join([line([h.upper() for h in headers])] + [line(r) for r in cells])


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """A second SIGINT/SIGTERM under ``on_signals(..., interrupt_again=True)``.

    A BaseException, so that no ``except Exception`` on the way swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def on_signals(callback: Callable[[], None], *, interrupt_again: bool = False) -> Iterator[None]:
    """Call ``callback`` on SIGTERM/SIGINT.

    A second signal gets the default behaviour (exit at once), or with
    ``interrupt_again`` raises ``Interrupted`` in the main thread, for the caller to
    clean up quickly; a third one then gets the default behaviour.
    """
    def defaults() -> None:
        for sig in saved:
            signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM else
                          signal.default_int_handler)

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) > 1:
            defaults()
            raise Interrupted(signum)
        log.info("%s: stopping (a second signal stops at once)", signal.Signals(signum).name)
        if not interrupt_again:
            defaults()
        callback()

    saved: dict[int, Any] = {}
    received: list[int] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            saved[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


class ConsumerError(click.ClickException):
    """The consumer's own code failed (its module's import, its constructor, its ``init``).

    One line and exit status 2, like homing's errors: the traceback belongs to the
    consumer's author, so it is logged at debug level only (``--log-level debug``).
    """

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _consumer_failed(what: str, exc: BaseException) -> ConsumerError:
    log.debug("%s", what, exc_info=exc)
    return ConsumerError(f"{what}: {type(exc).__name__}: {exc} "
                         "(--log-level debug shows the traceback)")


def load_consumer(target: str) -> Callable[[], Consumer]:
    """The factory of MODULE:CLASS, whose failures (import, construction, init) are one line."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"expected MODULE:CLASS, got {target!r}", param_hint="CONSUMER")
    if os.getcwd() not in sys.path:  # like gunicorn or celery: modules in the cwd import
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # SyntaxError, or whatever the module raises as it imports
        raise _consumer_failed(f"cannot load consumer {target!r}", exc) from exc
    if not (isinstance(obj, type) and issubclass(obj, Consumer)):
        raise click.BadParameter(f"{target!r} is not a homing.Consumer subclass",
                                 param_hint="CONSUMER")
    return functools.partial(_build, obj, target)


def _build(cls: type[Consumer], target: str) -> Consumer:
    """One consumer, its constructor's and init()'s exceptions made ConsumerErrors.

    init is wrapped on the instance, keeping it a coroutine function if it was
    one: the Worker decides by that whether the slot gets an event loop.
    """
    try:
        consumer = cls()
    except Exception as exc:
        raise _consumer_failed(f"consumer {target!r} could not be created", exc) from exc
    init = consumer.init
    what = f"the init() of consumer {target!r} raised"
    if inspect.iscoroutinefunction(init):
        async def wrapped_async() -> Any:
            try:
                return await init()
            except Exception as exc:
                raise _consumer_failed(what, exc) from exc
        wrapped: Callable[[], Any] = wrapped_async
    else:
        def wrapped() -> Any:
            try:
                return init()
            except Exception as exc:
                raise _consumer_failed(what, exc) from exc
    with contextlib.suppress(AttributeError):  # a class with __slots__ keeps its own init
        consumer.init = wrapped  # type: ignore[method-assign]
    return consumer
