"""Feedback as a re-ranking: papers like the liked ones rise, like the unwanted ones sink.

A few papers no line matched, but like the liked ones on average (and not like a disliked
one), join the digest.

Similarity to a seed paper is its `like:` score over the batch relative to the best one
(1 for the most similar paper). The effect is a factor on a paper's score, never a
change of the reader's lines; `Nudge.seed` names the paper that moved it, for the why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

LIKE_BOOST = 1.0  # a paper as like a liked one as any doubles its score
DISLIKE_CUT = 0.6  # ... and one as like a disliked one keeps 40% of it
NOTABLE = 0.25  # a similarity the why line mentions
EXTRA_SIMILAR = 0.4  # a paper no line matched joins when this like the liked ones
MAX_EXTRA = 3  # ... up to this many a digest

Similar = Mapping[int, Mapping[int, float]]  # seed paper -> paper -> similarity (0, 1]


def similarities(hits: Iterable[tuple[int, float]]) -> dict[int, float]:
    """(paper, score) pairs of a `like:` line as similarities: the best paper is 1."""
    pairs = list(hits)
    top = max((score for _, score in pairs), default=0.0)
    return {paper: score / top for paper, score in pairs} if top > 0 else {}


@dataclass(frozen=True)
class Nudge:
    """How feedback moves one paper: its score factor, and the seed that moved it most."""

    factor: float = 1.0
    seed: int | None = None
    up: bool = True


def _closest(paper: int, seeds: Similar) -> tuple[int | None, float]:
    best: tuple[int | None, float] = (None, 0.0)
    for seed, similar in seeds.items():
        value = similar.get(paper, 0.0)
        if value > best[1]:
            best = (seed, value)
    return best


def nudge(paper: int, liked: Similar, disliked: Similar) -> Nudge:
    """The factor on `paper`'s score from its likeness to liked and disliked papers."""
    up_seed, up = _closest(paper, liked)
    down_seed, down = _closest(paper, disliked)
    factor = (1 + LIKE_BOOST * up) * (1 - DISLIKE_CUT * down)
    if max(up, down) < NOTABLE:
        return Nudge(factor)
    return Nudge(factor, up_seed, True) if up >= down else Nudge(factor, down_seed, False)


def extras(
    liked: Similar, taken: set[int], allowed: Callable[[int], bool], disliked: Similar
) -> list[tuple[int, int, float]]:
    """Papers no line brought that are like the liked ones on average (one liked paper
    alone is a weak hint), less so as they resemble a disliked one: (paper, the most like
    seed, that value), best first, at most MAX_EXTRA."""
    if not liked:
        return []
    candidates = {paper for similar in liked.values() for paper in similar} - taken
    found = []
    for paper in candidates:
        mean = sum(similar.get(paper, 0.0) for similar in liked.values()) / len(liked)
        value = mean * (1 - DISLIKE_CUT * _closest(paper, disliked)[1])
        if value >= EXTRA_SIMILAR and allowed(paper):
            seed = max(liked, key=lambda s: liked[s].get(paper, 0.0))
            found.append((paper, seed, value))
    found.sort(key=lambda item: (-item[2], item[0]))
    return found[:MAX_EXTRA]
