"""The interest language: one line a subscriber types, parsed into a tree.

Bare words side by side are one loose phrase (`state space models`: the words together,
in order, by stem); `AND` and "quoted phrases" separate terms, which must all match;
`OR` between terms offers alternatives; `-word` excludes; parentheses group; `title:`,
`abstract:`, `author:` and `cat:` restrict a term to one field; `like:ID` finds papers
similar to one paper. Quoted words match exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TypeAlias

from digest.match.text import analyse, fold, is_cjk_pairs, name_parts

MAX_INTEREST_LENGTH = 300
MAX_CANONICAL_LENGTH = 500  # Interest.canonical's column
TRENDING_TOP = 10  # papers a `trending` line brings unless it says `trending:N`
TRENDING_MOST = 50
# `LoRA -survey  # Adapters`: the line's own label, after a space and "#".
_LABEL = re.compile(r"\s#(.*)$")
_TRENDING = re.compile(r"\s*trending(?::(\d+))?(?=\s|$)", re.IGNORECASE)
FIELDS = ("title", "abstract", "author", "cat", "like")
_RUN_FIELDS = ("", "title", "abstract")  # fields whose term may be a run of bare words
# like:2401.12345, like:2401.12345v2, like:hep-th/9901001, or a stored paper's id
_REF = re.compile(r"(\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[a-z]{2})?/\d{7}|\d{1,12})(?:v\d+)?")
_FIELD = re.compile(r"([A-Za-z]+):")
_WORD = re.compile(r'[^\s()"]+')
_DASHES = re.compile(r"-+(?=\s|$)")  # a word of dashes only: no letters, not an exclusion
_CATEGORY = re.compile(r"[a-z][a-z0-9-]*(\.[a-z0-9-]+)?")


class InterestError(ValueError):
    """An interest line that cannot be used; the message says what and where."""

    def __init__(self, line: str, message: str, column: int | None = None) -> None:
        where = f" (at column {column + 1})" if column is not None else ""
        super().__init__(f"{message}{where}: {line!r}")
        self.line = line
        self.reason = message
        self.column = column


@dataclass(frozen=True, order=True)
class Term:
    """One word or phrase, optionally restricted to a field; `exact` when quoted."""

    field: str
    words: tuple[str, ...]
    exact: bool = False

    @property
    def is_phrase(self) -> bool:
        """True when the term has more than one word."""
        return len(self.words) > 1

    @property
    def shown(self) -> str:
        """The term as a reader reads it: a loose phrase with spaces (`state space models`)."""
        if self.exact or self.field in ("author", "cat", "like") or not self.is_phrase:
            return str(self)
        prefix = f"{self.field}:" if self.field else ""
        if is_cjk_pairs(self.words):  # 大语 语言 言模 模型 -> 大语言模型
            return prefix + self.words[0] + "".join(w[1] for w in self.words[1:])
        return prefix + " ".join(self.words)

    def __str__(self) -> str:
        prefix = f"{self.field}:" if self.field else ""
        if self.exact or (self.field == "author" and self.is_phrase):
            return f'{prefix}"{" ".join(self.words)}"'
        return prefix + "-".join(self.words)


@dataclass(frozen=True)
class And:
    """Every child must match."""

    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """At least one child must match."""

    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The child must not match (only inside an And, beside something positive)."""

    child: Node


Node: TypeAlias = Term | And | Or | Not


def render(node: Node, top: bool = False) -> str:
    """The canonical text of a node; children are sorted so equivalent lines agree."""
    if isinstance(node, Term):
        return str(node)
    if isinstance(node, Not):
        return "-" + render(node.child)
    if isinstance(node, Or):
        return "(" + " OR ".join(sorted({render(child) for child in node.children})) + ")"
    text = ""
    previous: Node | None = None
    for child in sorted(node.children, key=render):
        # Two bare terms side by side would read as one phrase: `AND` keeps them apart.
        apart = _runs(previous) and isinstance(child, Term) and _runs(child) and not child.field
        text = f"{text} AND {render(child)}" if apart else f"{text} {render(child)}".strip()
        previous = child
    return text if top else f"({text})"


def _runs(node: Node | None) -> bool:
    """Whether bare words written after this node would join it as one phrase."""
    return isinstance(node, Term) and node.field in _RUN_FIELDS and not node.exact


def positive_terms(node: Node) -> list[Term]:
    """The terms a match is made of (not those under an exclusion), in canonical order."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return []
    return sorted({term for child in node.children for term in positive_terms(child)})


# What a bare `trending` line filters by: every paper.
EVERYTHING = And(())


@dataclass(frozen=True)
class Query:
    """A parsed interest line; `trending` > 0 for a `trending` line (its top N)."""

    root: Node
    trending: int = 0

    @cached_property
    def canonical(self) -> str:
        """A stable text form; lines that mean the same share it, and it parses to itself."""
        if not self.trending:
            return render(self.root, top=True)
        head = "trending" if self.trending == TRENDING_TOP else f"trending:{self.trending}"
        rest = "" if self.root == EVERYTHING else render(self.root, top=True)
        return f"{head} {rest}".strip()

    @cached_property
    def terms(self) -> tuple[Term, ...]:
        """The positive terms, which explain a match."""
        return tuple(positive_terms(self.root))


_Token = tuple[str, str, int]  # kind, text, column


def _lex(line: str) -> list[_Token]:
    found: list[_Token] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            found.append((ch, ch, i))
            i += 1
        elif ch == "-" and i + 1 < n and not line[i + 1].isspace() and not _DASHES.match(line, i):
            found.append(("not", "-", i))
            i += 1
        elif (field := _FIELD.match(line, i)) is not None:
            if field.group(1).lower() not in FIELDS:
                known = ", ".join(f"{name}:" for name in FIELDS)
                raise InterestError(line, f"unknown field {field.group(1)!r} (use {known})", i)
            name = field.group(1).lower()
            if field.end() == n or line[field.end()].isspace() or line[field.end()] == ")":
                raise InterestError(line, f"'{name}:' must be followed by a term", i)
            found.append(("field", name, i))
            i = field.end()
        elif ch == '"':
            end = line.find('"', i + 1)
            if end < 0:
                raise InterestError(line, "unbalanced quote", i)
            found.append(("phrase", line[i + 1 : end], i))
            i = end + 1
        else:
            end = _WORD.match(line, i).end()  # type: ignore[union-attr]
            word = line[i:end]
            kind = "or" if word == "OR" else "and" if word == "AND" else "word"
            found.append((kind, word, i))
            i = end
    return found


class _Parser:
    def __init__(self, line: str) -> None:
        self.line = line
        self.tokens = _lex(line)
        self.pos = 0

    def error(self, message: str, column: int | None = None) -> InterestError:
        return InterestError(self.line, message, column)

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def conjunction(self, field: str, depth: int) -> Node:
        children: list[Node] = []
        while (token := self.peek()) is not None and token[0] != ")":
            if token[0] == "and":
                self.take()
                following = self.peek()
                if not children or following is None or following[0] in (")", "or", "and"):
                    raise self.error("'AND' must stand between two terms", token[2])
                continue
            children.append(self.unary(field, depth))
        if token is not None and depth == 0:
            raise self.error("unmatched ')'", token[2])
        if not children:
            return And(())
        return children[0] if len(children) == 1 else And(tuple(children))

    def unary(self, field: str, depth: int) -> Node:
        token = self.peek()
        assert token is not None
        if token[0] == "not":
            self.take()
            if self.peek() is None or self.peek()[0] in (")", "or"):  # type: ignore[index]
                raise self.error("'-' must be followed by the term to exclude", token[2])
            return Not(self.primary(field, depth, run=False))
        alternatives = [self.primary(field, depth)]
        while (token := self.peek()) is not None and token[0] == "or":
            self.take()
            following = self.peek()
            if following is None or following[0] in (")", "or"):
                raise self.error("'OR' must stand between two terms", token[2])
            if following[0] == "not":
                raise self.error("an exclusion cannot be an alternative of OR", following[2])
            alternatives.append(self.primary(field, depth))
        return alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))

    def primary(self, field: str, depth: int, run: bool = True) -> Node:
        kind, text, column = self.take()
        if kind == "field":
            if field:
                raise self.error(f"'{text}:' cannot be used inside '{field}:'", column)
            if self.peek() is None:
                raise self.error(f"'{text}:' must be followed by a term", column)
            return self.primary(text, depth, run)
        if kind == "(":
            inner = self.conjunction(field, depth + 1)
            closing = self.peek()
            if closing is None:
                raise self.error("unmatched '('", column)
            self.take()
            if isinstance(inner, And) and not inner.children:
                raise self.error("empty parentheses", column)
            return inner
        if kind == "or":
            raise self.error("'OR' must stand between two terms", column)
        if kind == "not":
            raise self.error("'-' cannot exclude an exclusion", column)
        if kind == ")":
            raise self.error("unmatched ')'", column)
        if kind == "and":
            raise self.error("'AND' must stand between two terms", column)
        if kind == "word" and run and field in _RUN_FIELDS:
            # Bare words side by side are one phrase: `state space models`.
            while (following := self.peek()) is not None and following[0] == "word":
                _, word, at = self.take()
                if not _words(word):
                    raise self.error(f"{word!r} has no letters or digits", at)
                text = f"{text} {word}"
        return self.term(field, text, kind == "phrase", column)

    def term(self, field: str, raw: str, quoted: bool, column: int) -> Term:
        if field == "cat":
            category = fold(raw).strip()
            if not _CATEGORY.fullmatch(category):
                raise self.error(f"cat: takes one category such as cs.LG, not {raw!r}", column)
            return Term("cat", (category,))
        if field == "author":
            parts = name_parts(raw)
            if not parts:
                raise self.error(f"author: needs a name, not {raw!r}", column)
            return Term("author", parts)
        if field == "like":
            ref = _REF.fullmatch(raw.strip().casefold())
            if ref is None:
                raise self.error(
                    f"like: takes an arXiv id such as 2401.04088 or a paper number, not {raw!r}",
                    column,
                )
            return Term("like", (ref[1],))
        words = _words(raw)
        if not words:
            shown = f'"{raw}"' if quoted else raw
            raise self.error(f"{shown!r} has no letters or digits", column)
        return Term(field, words, quoted)


@lru_cache(maxsize=1 << 16)
def _words(raw: str) -> tuple[str, ...]:
    return tuple(analyse(raw)[0])


def _simplify(node: Node) -> Node:
    """Flatten nested And/Or, drop duplicate children."""
    if isinstance(node, Term):
        return node
    if isinstance(node, Not):
        return Not(_simplify(node.child))
    kind = type(node)
    children: dict[str, Node] = {}
    for child in node.children:
        child = _simplify(child)
        for part in child.children if isinstance(child, kind) else (child,):
            children.setdefault(render(part), part)
    if len(children) == 1:
        return next(iter(children.values()))
    return kind(tuple(children[key] for key in sorted(children)))


def _check(parser: _Parser, node: Node) -> None:
    """Refuse trees that can match nothing useful: only exclusions, or a contradiction."""
    if isinstance(node, Not):
        raise parser.error("an interest needs at least one term to look for, not only exclusions")
    if isinstance(node, Or):
        for child in node.children:
            _check(parser, child)
    if isinstance(node, And):
        positives = [child for child in node.children if not isinstance(child, Not)]
        if not positives:
            raise parser.error(
                "an interest needs at least one term to look for, not only exclusions"
            )
        excluded = {render(child.child) for child in node.children if isinstance(child, Not)}
        for child in positives:
            if render(child) in excluded:
                raise parser.error(f"{render(child)} is both required and excluded")
            _check(parser, child)
        for child in node.children:
            if isinstance(child, Not) and not isinstance(child.child, Term):
                _check(parser, child.child)


def split_label(line: str) -> tuple[str, str]:
    """(the query, its label): `LoRA -survey  # Adapters` -> ("LoRA -survey", "Adapters")."""
    found = _LABEL.search(line)
    if found is None:
        return line, ""
    return line[: found.start()], " ".join(found[1].split())


def parse(line: str) -> Query:
    """Parse an interest line, or raise InterestError pointing at the problem.

    A line that starts with the word `trending` (or `trending:N`) asks for the papers with
    the most Hugging Face upvotes; the rest of it, if any, restricts them. A label at the
    end (`  # Adapters`) names the line in headings and changes nothing else.
    """
    line, _ = split_label(line)
    if not line.strip():
        raise InterestError(line, "an interest cannot be empty")
    if "\x00" in line:
        raise InterestError(line, "an interest cannot hold a NUL character", line.index("\x00"))
    if (trending := _TRENDING.match(line)) is not None:
        top = int(trending[1] or TRENDING_TOP)
        if not 1 <= top <= TRENDING_MOST:
            raise InterestError(line, f"trending:N takes N from 1 to {TRENDING_MOST}", 0)
        rest = line[trending.end() :]
        try:
            root = parse(rest).root if rest.strip() else EVERYTHING
        except InterestError as exc:
            column = None if exc.column is None else exc.column + trending.end()
            raise InterestError(line, exc.reason, column) from exc
        return Query(root, top)
    if len(line.strip()) > MAX_INTEREST_LENGTH:
        raise InterestError(line, f"an interest is at most {MAX_INTEREST_LENGTH} characters")
    parser = _Parser(line)
    root = _simplify(parser.conjunction("", 0))
    _check(parser, root)
    query = Query(root)
    if len(query.canonical) > MAX_CANONICAL_LENGTH:
        raise InterestError(line, "this interest is too complex; split it into several lines")
    return query


@lru_cache(maxsize=8192)
def readable(line: str) -> str:
    """An interest line as a heading reads it: no syntax, exclusions left out, the case kept.

    `(pruning OR sparsity) LLM` -> "pruning or sparsity LLM", `cat:cs.CL diffusion` ->
    "diffusion in cs.CL", `author:"Yann LeCun"` -> "Yann LeCun", `LoRA -survey` -> "LoRA".
    A line that cannot be parsed is returned as it is; a line's own label wins.
    """
    line, label = split_label(line)
    if label:
        return label
    if (trending := _TRENDING.match(line)) is not None:
        top = int(trending[1] or TRENDING_TOP)
        label = "trending" if top == TRENDING_TOP else f"top {top} trending"
        rest = line[trending.end() :]
        return f"{label}: {readable(rest)}" if rest.strip() else label
    try:
        lexed = _lex(line)
    except InterestError:
        return line.strip()
    words: list[str] = []
    by: dict[str, list[str]] = {"author": [], "cat": []}
    field, depth, skip = "", 0, -1  # skip: the depth of an excluded group, while in it
    for kind, text, _ in lexed:
        if kind == "and":
            continue
        if kind == "(":
            depth += 1
        elif kind == ")":
            depth -= 1
            skip = -1 if depth <= skip else skip
        elif skip >= 0 and depth > skip:
            continue
        elif kind == "not":
            skip = depth  # the next term, or the next group, is excluded
        elif kind == "field":
            field = text
        elif skip == depth:
            skip, field = -1, ""
        else:
            shown = "or" if kind == "or" else f"papers like {text}" if field == "like" else text
            (by[field] if field in by and kind != "or" else words).append(shown)
            field = ""
    people = ", ".join(by["author"])
    text = " ".join(words) or people
    if by["cat"]:
        categories = ", ".join(by["cat"])
        text = f"{text} in {categories}" if text else categories
    if people and words:
        text = f"{text} by {people}"
    return text or line.strip()
