"""Build the functions marked ``--@cold`` on first use, not on every call (lua/build.py).

Why: Redis runs a script's whole chunk on every EVALSHA, so each top-level
``local function`` is a closure built again per call, with an upvalue object
for each top-level local it captures (bench/luacost.py --instructions: ~460
instructions a closure, ~470 more per captured local). lua/deadcode.py drops
the functions a script never names; this drops, from the common path, those it
names only on rare paths (an error message, a priority level, an idempotency
key). A function marked with a ``--@cold`` line right above its ``local
function`` line moves into one builder that makes all of them the first time
one is called in that call; each call site ``f(...)`` becomes ``cold().f(...)``.

How it stays safe: a cold name may appear only as its own declaration and in
call position (``name(``): a value use, a parameter, a local or a second
declaration of the name would be rewritten wrongly, so the build refuses it.
The builder stands where the last cold declaration stood, so every top-level
local a cold body captured is declared above it; a top-level local declared
twice above that point could then bind differently, so that is refused too.
Standard library only, like build.py.
"""
from __future__ import annotations

import re

from deadcode import Token, declaration_at, nesting, tokenize

MARK_RE = re.compile(r"^[ \t]*--@cold\b[^\n]*\n", re.MULTILINE)


class ColdError(Exception):
    """A --@cold function used in a way the rewrite cannot keep."""


def _top_level(tokens: list[Token]) -> list[tuple[int, int]]:
    """(first, last) token indexes of each depth-0 ``local`` declaration."""
    out, depth, i = [], 0, 0
    while i < len(tokens):
        t = tokens[i]
        if depth == 0 and t.text == "local":
            d = declaration_at(tokens, i)
            if d:
                out.append((d.first, d.last))
                i = d.last + 1
                continue
        depth += nesting(t)
        i += 1
    return out


def defer(code: str) -> tuple[str, list[str]]:
    """code with its --@cold functions built on first use; their names."""
    tokens = tokenize(code)
    decls = _top_level(tokens)
    cold: list[tuple[str, int, int]] = []  # name, first, last token
    for first, last in decls:
        if tokens[first + 1].text != "function":
            continue
        line_start = code.rfind("\n", 0, tokens[first].start) + 1
        above = code.rfind("\n", 0, max(line_start - 1, 0)) + 1
        if line_start and code[above:line_start].strip().startswith("--@cold"):
            cold.append((tokens[first + 2].text, first, last))
    if not cold:
        return MARK_RE.sub("", code), []
    names = {n for n, _, _ in cold}
    own = {f + 2 for _, f, _ in cold}
    builder_at = tokens[cold[-1][1]].start
    # A top-level local declared twice above the builder: a cold body moved
    # below the second one would capture it instead of the first.
    used = set().union(*(_names(tokens, a, b) for _, a, b in cold))
    seen: set[str] = set()
    for first, last in decls:
        if tokens[first].start >= builder_at:
            break
        for n in _declared(tokens, first, last):
            if n in seen and n in used:
                raise ColdError(f"top-level local {n} is declared twice above a --@cold function")
            seen.add(n)
    calls = []
    # Which tokens lie inside a function body: a call outside every function
    # runs where it stands, so it must come after the builder (cold is nil
    # above it; found at run time only, on the rare path, before this check).
    in_function, blocks = [], []
    for t in tokens:
        if t.kind == "keyword" and t.text in ("function", "if", "do", "repeat"):
            blocks.append(t.text)
        elif t.kind == "keyword" and t.text in ("end", "until") and blocks:
            blocks.pop()
        in_function.append("function" in blocks)
    for i, t in enumerate(tokens):
        if t.kind != "name" or t.text not in names or i in own:
            continue
        if not in_function[i] and t.start < builder_at and tokens[i - 1].text not in (".", ":"):
            raise ColdError(f"line {t.line}: --@cold function {t.text} is called above the "
                            "last --@cold declaration, where the builder stands: move that "
                            "declaration up")
        if i and tokens[i - 1].text in (".", ":"):
            continue
        if i + 1 >= len(tokens) or tokens[i + 1].text != "(":
            raise ColdError(f"line {t.line}: --@cold function {t.text} used other than by a call")
        if i and tokens[i - 1].text == "function":
            raise ColdError(f"line {t.line}: --@cold function {t.text} declared twice")
        calls.append(t)
    # Edits in order of position: the call sites outside the cold functions
    # (those inside are rewritten in the builder), each cold declaration cut
    # out, the last one replaced by the builder.
    spans = [(tokens[a].start, tokens[b].end) for _, a, b in cold]
    edits: list[tuple[int, int, str]] = [
        (t.start, t.end, f"cold().{t.text}") for t in calls
        if not any(a <= t.start < b for a, b in spans)]
    bodies = []
    for name, first, last in cold:
        head_end = tokens[first + 2].end
        start = code.rfind("\n", 0, tokens[first].start) + 1
        # The comment lines above it (its why, and the mark) move with it.
        while start > 0:
            prev = code.rfind("\n", 0, start - 1) + 1
            line = code[prev:start].strip()
            if not line.startswith("--") or line.startswith("-- include "):
                break
            start = prev
        end = code.find("\n", tokens[last].end)
        end = len(code) if end < 0 else end + 1
        doc = MARK_RE.sub("", code[start:code.rfind("\n", 0, tokens[first].start) + 1])
        bodies.append((name, doc, head_end, tokens[last].end))
        edits.append((start, end, "\x00" if (name, first, last) == cold[-1] else ""))
    edits.sort(key=lambda e: e[0])
    out, pos = [], 0
    for a, b, text in edits:
        out.append(code[pos:a])
        if text == "\x00":
            out.append(_builder(code, bodies, calls))
        else:
            out.append(text)
        pos = b
    out.append(code[pos:])
    head = "local cold  -- lua/cold.py: the functions marked cold, built on first use\n"
    text = head + "".join(out)
    return MARK_RE.sub("", text), [n for n, _, _ in cold]


def _names(tokens: list[Token], first: int, last: int) -> set[str]:
    return {t.text for t in tokens[first:last + 1] if t.kind == "name"}


def _declared(tokens: list[Token], first: int, last: int) -> list[str]:
    """The names a top-level ``local`` declaration binds."""
    if tokens[first + 1].text == "function":
        return [tokens[first + 2].text]
    out, j = [], first + 1
    while j <= last and tokens[j].kind == "name":
        out.append(tokens[j].text)
        if j + 1 > last or tokens[j + 1].text != ",":
            break
        j += 2
    return out


def _builder(code: str, bodies: list[tuple[str, str, int, int]], calls: list[Token]) -> str:
    """The builder of the cold functions, their call sites inside rewritten too."""
    parts = ["-- The functions marked cold (lua/cold.py): built by the first call of\n"
             "-- one of them, as fields of C; cold() then only hands C back.\n"
             "cold = function()\n  local C = {}\n"]
    for name, doc, head_end, end in bodies:
        inner = [t for t in calls if head_end <= t.start < end]
        text, pos = [], head_end
        for t in inner:
            text.append(code[pos:t.start])
            text.append(f"cold().{t.text}")
            pos = t.end
        text.append(code[pos:end])
        parts.append(doc + f"function C.{name}" + "".join(text) + "\n")
    parts.append("  cold = function() return C end\n  return C\nend\n")
    return "".join(parts)
