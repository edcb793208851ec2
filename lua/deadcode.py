"""Drop the top-level locals a flattened script never reaches (lua/build.py).

Why: Redis runs a script's whole chunk on every EVALSHA, so each ``local
function`` and local table of every include the script pulls in is built
again on every call, used or not. A single enqueue included ~40 functions and
the generated tables; building them cost ~15 µs of Redis time per call, more
than the script's own work. The includes stay whole on disk; the flattened
source keeps only what its script uses.

How it stays safe: a name-reference analysis over Lua tokens, erring towards
keeping. Only top-level declarations of the include files and of the generated
prologue are candidates, and only of two forms whose end is certain and whose
removal runs nothing less: ``local function NAME ... end`` and ``local NAMES =
EXPR`` where EXPR calls nothing but ``setmetatable`` (so no command and no side
effect is dropped). Every other statement, and the script's own body, is a
root. A name counts as used wherever it appears as a name token (not after
``.`` or ``:``): shadowing, table keys and parameters can only keep more. A
candidate goes only when none of its names is reachable from the roots.
Standard library only, like build.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

KEYWORDS = frozenset(["and", "break", "do", "else", "elseif", "end", "false", "for", "function",
                      "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true",
                      "until", "while"])
# A block opens with these and closes with end (or until): while and for open
# theirs with do, if with its own keyword (then/elseif/else do not nest).
OPENERS = frozenset({"function", "if", "do", "repeat"})
CLOSERS = frozenset({"end", "until"})
# A line that starts with one of these continues the expression above it.
BINARY = frozenset({"..", "+", "-", "*", "/", "%", "^", "==", "~=", "<", ">", "<=", ">=",
                    "and", "or"})
# A line that ends with one of these continues on the next.
PENDING = BINARY | {",", "=", "not", "#", "(", "[", "{"}
# What may follow a removable declaration: a statement that surely starts there.
STATEMENT = frozenset({"local", "function", "if", "for", "while", "do", "repeat", "return",
                       "break"})
PURE_CALLS = frozenset({"setmetatable"})

TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>--(?:\[(?P<ceq>=*)\[[\s\S]*?\](?P=ceq)\]|[^\n]*))
  | (?P<long>\[(?P<leq>=*)\[[\s\S]*?\](?P=leq)\])
  | (?P<string>"(?:\\[\s\S]|[^"\\\n])*"|'(?:\\[\s\S]|[^'\\\n])*')
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|[-+*/%^#<>=(){}\[\];:,.])
""", re.VERBOSE)


class LuaSyntaxError(Exception):
    """Text the tokenizer cannot read (the build refuses it)."""


@dataclass(frozen=True)
class Token:
    kind: str   # name, keyword, string, number, op
    text: str
    start: int  # offsets into the text
    end: int
    line: int


def tokenize(text: str) -> list[Token]:
    """Lua 5.1 tokens without whitespace and comments."""
    out, pos, line = [], 0, 1
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise LuaSyntaxError(f"line {line}: cannot read {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        if kind in ("ceq", "leq"):  # an inner group: the outer one is the kind
            kind = "comment" if m.group("comment") else "long"
        word = m.group(0)
        if kind == "name" and word in KEYWORDS:
            kind = "keyword"
        if kind == "long":
            kind = "string"
        if kind not in ("space", "comment"):
            out.append(Token(kind, word, pos, m.end(), line))
        line += word.count("\n")
        pos = m.end()
    return out


def referenced(tokens: list[Token]) -> set[str]:
    """Names used by these tokens (a field name after '.' or ':' is not one)."""
    names = set()
    for i, t in enumerate(tokens):
        if t.kind == "name" and not (i and tokens[i - 1].text in (".", ":")):
            names.add(t.text)
    return names


@dataclass
class Declaration:
    names: list[str]
    first: int  # token indexes, inclusive
    last: int


def nesting(t: Token) -> int:
    """How token t changes the depth: +1 opens a block or a bracket, -1 closes one."""
    if t.kind == "keyword":
        return 1 if t.text in OPENERS else -1 if t.text in CLOSERS else 0
    return 1 if t.text in ("(", "[", "{") else -1 if t.text in (")", "]", "}") else 0


def _block_end(tokens: list[Token], i: int) -> int | None:
    """Index of the token that closes the block opened at tokens[i]."""
    depth = 0
    for j in range(i, len(tokens)):
        t = tokens[j]
        if t.kind == "keyword" and t.text in OPENERS:
            depth += 1
        elif t.kind == "keyword" and t.text in CLOSERS:
            depth -= 1
            if depth == 0:
                return j
    return None


def _calls(tokens: list[Token]) -> set[str]:
    """What an expression calls: the token before each '(' that is no parameter list."""
    called = set()
    for j, t in enumerate(tokens):
        if t.text == "(" and j and tokens[j - 1].kind != "keyword":
            prev = tokens[j - 1]
            called.add(prev.text if prev.kind == "name" else "<" + prev.text + ">")
        if t.kind in ("string",) and j and tokens[j - 1].kind == "name":
            called.add(tokens[j - 1].text)  # f'text' is a call too
        if t.text == "{" and j and tokens[j - 1].kind == "name":
            called.add(tokens[j - 1].text)  # f{...} as well
    return called


def declaration_at(tokens: list[Token], i: int) -> Declaration | None:
    """A removable declaration starting at tokens[i] ('local'), else None."""
    n = len(tokens)
    if i + 1 >= n:
        return None
    if tokens[i + 1].text == "function":
        if i + 2 >= n or tokens[i + 2].kind != "name":
            return None
        last = _block_end(tokens, i + 1)
        if last is None:
            return None
        return _confident(tokens, Declaration([tokens[i + 2].text], i, last))
    names, j = [], i + 1
    while j < n and tokens[j].kind == "name":
        names.append(tokens[j].text)
        j += 1
        if j < n and tokens[j].text == ",":
            j += 1
        else:
            break
    if not names:
        return None
    if j >= n or tokens[j].text != "=":
        # 'local a, b' with no value: it ends after its last name.
        return _confident(tokens, Declaration(names, i, j - 1))
    # The value list: it ends at a line break at depth 0 where neither side
    # of the break continues the expression.
    depth, k = 0, j + 1
    while k < n:
        t = tokens[k]
        depth += nesting(t)
        if depth < 0:
            return None
        if depth == 0:
            nxt = tokens[k + 1] if k + 1 < n else None
            if nxt is None or nxt.text == ";":
                break
            if (nxt.line > t.line and t.text not in PENDING and nxt.text not in BINARY
                    and nxt.text not in (".", ":", "(", "[", "{") and nxt.kind != "string"):
                break
        k += 1
    if k >= n or k == j:
        return None
    if _calls(tokens[j + 1:k + 1]) - PURE_CALLS:
        return None  # it runs something: keep it whether used or not
    return _confident(tokens, Declaration(names, i, k))


def _confident(tokens: list[Token], d: Declaration) -> Declaration | None:
    """d, if the token after it surely starts another statement (or there is none)."""
    if d.last + 1 >= len(tokens):
        return d
    nxt = tokens[d.last + 1]
    if nxt.text == ";" or nxt.text in STATEMENT or (
            nxt.kind == "name" and nxt.line > tokens[d.last].line):
        return d
    return None


def prune(pieces: list[tuple[bool, str]]) -> tuple[str, list[str], list[int]]:
    """Join pieces of a script, dropping unreached declarations of the removable ones.

    ``pieces`` are (removable, text) in source order: the generated prologue
    and the include files removable, the script's own text not. Returns the
    source, the names dropped (in order) and where each piece starts in it.
    """
    text = "".join(p for _, p in pieces)
    tokens = tokenize(text)
    # Which piece each offset belongs to, to keep candidates within one removable piece.
    bounds, pos = [], 0
    for removable, p in pieces:
        bounds.append((pos, pos + len(p), removable))
        pos += len(p)

    def piece_of(offset: int) -> tuple[int, int, bool]:
        for b in bounds:
            if b[0] <= offset < b[1]:
                return b
        return (0, 0, False)

    decls: list[Declaration] = []
    root_tokens: list[Token] = []
    depth, i = 0, 0
    while i < len(tokens):
        t = tokens[i]
        if depth == 0 and t.text == "local" and piece_of(t.start)[2]:
            d = declaration_at(tokens, i)
            if d and piece_of(tokens[d.last].start) == piece_of(t.start):
                decls.append(d)
                i = d.last + 1
                continue
        depth += nesting(t)
        root_tokens.append(t)
        i += 1
    live = _names_of(root_tokens, tokens)
    refs = [_uses(tokens, d) for d in decls]
    changed = True
    keep = [False] * len(decls)
    while changed:
        changed = False
        for k, d in enumerate(decls):
            if not keep[k] and live & set(d.names):
                keep[k] = True
                live |= refs[k]
                changed = True
    cut: list[tuple[int, int]] = []
    dropped: list[str] = []
    for k, d in enumerate(decls):
        if not keep[k]:
            cut.append(_span(text, tokens[d.first].start, tokens[d.last].end))
            dropped += d.names
    out, pos = [], 0
    for a, b in cut:
        out.append(text[pos:a])
        pos = b
    out.append(text[pos:])

    def moved(x: int) -> int:
        return x - sum(min(b, x) - a for a, b in cut if a < x)

    return "".join(out), dropped, [moved(b[0]) for b in bounds]


def _names_of(root_tokens: list[Token], tokens: list[Token]) -> set[str]:
    """Names the roots use; '.' before a name is looked up in the full stream."""
    index = {t.start: n for n, t in enumerate(tokens)}
    names = set()
    for t in root_tokens:
        n = index[t.start]
        if t.kind == "name" and not (n and tokens[n - 1].text in (".", ":")):
            names.add(t.text)
    return names


def _uses(tokens: list[Token], d: Declaration) -> set[str]:
    """The names a declaration's value or body uses.

    A ``local function f`` binds f before its body, so f inside is itself
    (recursion, no use); in ``local t = t`` the value's t is an earlier one.
    """
    if tokens[d.first + 1].text == "function":
        return referenced(tokens[d.first + 3:d.last + 1]) - {d.names[0]}
    eq = next((j for j in range(d.first, d.last + 1) if tokens[j].text == "="), None)
    return set() if eq is None else referenced(tokens[eq + 1:d.last + 1])


def _span(text: str, a: int, b: int) -> tuple[int, int]:
    """[a, b) widened to whole lines, with the comment lines right above it."""
    start = text.rfind("\n", 0, a) + 1
    if text[start:a].strip():
        return a, b  # something else shares the line: cut the tokens only
    end = text.find("\n", b)
    end = len(text) if end < 0 else end + 1
    if text[b:end].strip() and not text[b:end].strip().startswith("--"):
        end = b
    while start > 0:
        prev = text.rfind("\n", 0, start - 1) + 1
        if text[prev:start].lstrip().startswith("--") and not text[prev:start].lstrip(
                ).startswith("-- include "):
            start = prev
        else:
            break
    # After a blank line, the blank lines that follow go too: one gap, not two.
    if end == b or start == 0 or text[text.rfind("\n", 0, start - 1) + 1:start].strip():
        return start, end
    while end < len(text):
        nxt = text.find("\n", end)
        if nxt < 0 or text[end:nxt].strip():
            break
        end = nxt + 1
    return start, end


def fold(text: str, consts: dict[str, dict[str, str]]) -> str:
    """Replace each read ``NAME.FIELD`` of a generated constant table by its value.

    Why: a table costs its allocation on every call (Redis runs the chunk
    each time), so ``K.ready`` becomes ``KEYS[1]`` and ``LIMITS.batch``
    ``(1000)``, and the tables themselves then go with the unused locals
    (prune). Only a read is folded: a NAME.FIELD followed by '=' (an
    assignment to the table) is an error. A field the table lacks is left
    as it is (a dropped function may name a key its script does not
    declare; build.py has refused any that live code names).
    """
    tokens = tokenize(text)
    out, pos = [], 0
    for i in range(len(tokens) - 2):
        a, dot, f = tokens[i], tokens[i + 1], tokens[i + 2]
        if not (a.kind == "name" and a.text in consts and dot.text == "."
                and not (i and tokens[i - 1].text in (".", ":"))):
            continue
        table = consts[a.text]
        if f.kind != "name" or f.text not in table:
            continue  # dead code may name an undeclared key; live code cannot (build.py)
        if i + 3 < len(tokens) and tokens[i + 3].text == "=":
            raise LuaSyntaxError(f"line {a.line}: {a.text}.{f.text} is generated, not assignable")
        out.append(text[pos:a.start])
        out.append(table[f.text])
        pos = f.end
    out.append(text[pos:])
    return "".join(out)
