#!/usr/bin/env python3
"""Lines of code of the hand-written call layer in each port (docs/protocol.md).

Why: the call table exists to make the ports' call layers small, and issue 9
asks for their size before and after. "Code" means lines holding something
other than blank space, comments or docstrings (JSDoc and EDoc are comments),
counted the same way for the three languages, so the figures compare.

    python3 scripts/loc.py              # the call layer of this checkout
    python3 scripts/loc.py --ref main   # the same files as a git ref has them
    python3 scripts/loc.py FILE...      # any files (.py, .js, .erl)

Stdlib only. Each line prints as ``code (all) path``; a file missing at the
ref prints as 0.
"""
from __future__ import annotations

import argparse
import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The call layer of each port: the table's interpreter and its argument types.
# JavaScript's ops.js (the older positional API) and checks.js (settings that
# are no call argument) are listed apart, as docs/protocol.md counts them.
LAYERS = {
    "Python": ["python/homing/ops.py", "python/homing/argtypes.py"],
    "JavaScript": ["javascript/src/calls.js", "javascript/src/argtypes.js"],
    "JavaScript ops.js": ["javascript/src/ops.js"],
    "Erlang": ["erlang/src/homing_call.erl"],
}


def python_code(text: str) -> set[int]:
    """Line numbers holding Python code: no comment, blank or docstring lines."""
    doc: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            doc.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines - doc


def c_like_code(text: str, line_comment: str, block: bool, quotes: str) -> set[int]:
    """Line numbers holding code in JS (// and /* */) or Erlang (%, and $c characters).

    A small scanner, not a parser: it knows strings (so a '//' in a URL is
    code) but not JavaScript's regular expression literals, which in these
    files hold no comment marker.
    """
    lines: set[int] = set()
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith(line_comment, i):
            while i < n and text[i] != "\n":
                i += 1
        elif block and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += text.count("\n", i, end)
            i = end
        elif c in quotes:
            lines.add(line)
            i += 1
            while i < n and text[i] != c:
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                    lines.add(line)
                i += 1
            i += 1
        elif c == "$" and line_comment == "%":  # an Erlang character: $% or $" is no comment
            lines.add(line)
            i += 3 if text.startswith("$\\", i) else 2
        else:
            lines.add(line)
            i += 1
    return lines


def code_lines(path: str, text: str) -> int:
    """How many lines of text (the file at path) hold code."""
    if path.endswith(".py"):
        return len(python_code(text))
    if path.endswith(".js"):
        return len(c_like_code(text, "//", True, "\"'`"))
    if path.endswith(".erl"):
        return len(c_like_code(text, "%", False, "\""))
    raise SystemExit(f"{path}: not .py, .js or .erl")


def read(path: str, ref: str | None) -> str | None:
    if ref is None:
        p = ROOT / path
        return p.read_text(encoding="utf-8") if p.exists() else None
    r = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{path}"], capture_output=True,
                       text=True)
    return r.stdout if r.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="files to count instead of the call layers")
    parser.add_argument("--ref", help="count the files as this git ref has them")
    args = parser.parse_args(argv)
    groups = {"files": args.files} if args.files else LAYERS
    for name, paths in groups.items():
        code = total = 0
        for path in paths:
            text = read(path, args.ref)
            c, t = (0, 0) if text is None else (code_lines(path, text), len(text.splitlines()))
            code, total = code + c, total + t
            print(f"{c:5} ({t:4}) {path}")
        print(f"{code:5} ({total:4}) {name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
