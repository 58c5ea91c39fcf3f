"""Feedback links are signed in bulk by a fast path: the tokens are exactly itsdangerous's."""

from __future__ import annotations

import time

import pytest
from itsdangerous import BadSignature, URLSafeTimedSerializer

from digest.tokens import FEEDBACK, make_paper_tokens, read_paper_token

SECRET = "a-test-key-" + "x" * 40


def test_paper_tokens_are_the_ones_itsdangerous_signs_and_reads() -> None:
    plain = URLSafeTimedSerializer(SECRET, salt=FEEDBACK)
    papers = [1, 70, 123_456_789]
    for _ in range(5):  # the two must be signed within the same second
        second = int(time.time())
        ours = make_paper_tokens(SECRET, 42, 3, papers)
        theirs = {paper: plain.dumps([42, 3, paper]) for paper in papers}
        if int(time.time()) == second:
            break
    assert ours == theirs
    for paper, token in ours.items():
        assert plain.loads(token) == [42, 3, paper]
        assert read_paper_token(SECRET, token) == (42, 3, paper)
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer(SECRET + "!", salt=FEEDBACK).loads(ours[1])
