"""The sign-up page's live preview under load: many people typing interests at once.

A week of papers (the real papers of ../shared/data/papers.jsonl repeated to PER_DAY a
day for 7 days, as bench/web_preview.py builds it) in a SQLite file; `digest serve` in
its own process on 127.0.0.1 and a free port, as an operator starts it, with:
- DIGEST_SOURCES=[] (nothing ingested from the network) and no subscribers, so the
  scheduler has nothing to plan or send; SMTP points at bench/smtp_sink.py, which
  discards whatever it is given;
- DIGEST_PREVIEW_PER_IP_MINUTE raised to 1,000,000 in the server's environment: every
  client of this script comes from 127.0.0.1 and would share one limit, where real
  visitors each have their own. The default of 60 a minute is unchanged for users.

Then CLIENTS concurrent httpx clients (one connection each, as separate browsers) POST
/preview for DURATION seconds, as templates/web/web.js does after a pause in typing
(form fields `interests` and `form`): one to five lines of phrases from the papers'
titles, the last one growing as if typed (so mostly a line not previewed before),
sometimes with a quoted phrase, an exclusion, an OR or a `like:N` of a stored paper.
Each client sends its next request when the previous answer arrived, after PAUSE
seconds (default 0: harsher than the page, which waits 0.7 s of no typing); each starts
within the first second. One preview is made before the clock starts (the server's first
one builds the week's index).

Prints requests, errors (any answer but 200, or no answer), latency percentiles and
requests per second.

Run: .venv/bin/python bench/preview_load.py [--clients 20] [--duration 60] [--per-day 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from digest.db import make_engine, upgrade
from digest.mail.capture import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smtp_sink import sink_process
from web_preview import fill_week, records

MAX_LINES = 5  # the page's box, as people fill it here (a subscription allows 20)
SMALL = {"a", "an", "and", "by", "for", "from", "in", "of", "on", "the", "to", "via", "with"}


def title_phrases() -> list[str]:
    """Runs of one to three words of the real titles, neither starting nor ending with a
    small word: what people type as interests."""
    phrases: set[str] = set()
    for record in records():
        words = re.findall(r"[A-Za-z][A-Za-z0-9-]+", record["title"])
        for size in (1, 2, 2, 3):
            for start in range(len(words) - size + 1):
                run = words[start : start + size]
                if run[0].lower() not in SMALL and run[-1].lower() not in SMALL:
                    phrases.add(" ".join(w if w.isupper() else w.lower() for w in run))
    return sorted(phrases)


class Typist:
    """One person at the sign-up form: finished lines, and the last one being typed."""

    def __init__(self, rng: random.Random, phrases: list[str], papers: int) -> None:
        self.rng = rng
        self.phrases = phrases
        self.papers = papers
        self.done: list[str] = []
        self.target = ""
        self.typed = 0
        self._start()

    def _line(self) -> str:
        rng, pick = self.rng, self.rng.choice
        kind = rng.random()
        if kind < 0.1:
            return f"like:{rng.randint(1, self.papers)}"
        if kind < 0.25:
            return f'"{pick(self.phrases)}" {pick(self.phrases).split()[0]}'
        if kind < 0.32:
            return f"{pick(self.phrases)} -{pick(self.phrases).split()[-1]}"
        if kind < 0.38:
            return f"{pick(self.phrases)} OR {pick(self.phrases)}"
        return pick(self.phrases)

    def _start(self) -> None:
        """A fresh box, or one more line under the finished ones."""
        if not self.done or len(self.done) >= MAX_LINES or self.rng.random() < 0.3:
            self.done = [self._line() for _ in range(self.rng.randint(0, MAX_LINES - 1))]
        self.target = self._line()
        self.typed = 0

    def next_box(self) -> str:
        """The box's text at the next pause in typing: a few more characters of the last
        line (often to the end of a word), or, once it is finished, the next line begun."""
        if self.typed >= len(self.target):
            self.done.append(self.target)
            self._start()
        left = self.target[self.typed :]
        space = left.find(" ", 1)
        step = space if space > 0 and self.rng.random() < 0.6 else self.rng.randint(2, 6)
        self.typed = min(len(self.target), self.typed + step)
        return "\n".join([*self.done, self.target[: self.typed]])


@dataclass
class Tally:
    """What the clients saw: latencies of the 200s, and everything else by kind."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lines: set[str] = field(default_factory=set)


async def client(base: str, typist: Typist, until: float, pause: float, tally: Tally) -> None:
    """Preview as one visitor until `until` (a time.perf_counter() value)."""
    await asyncio.sleep(typist.rng.random())  # visitors do not start at the same instant
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while time.perf_counter() < until:
            box = typist.next_box()
            tally.lines.update(box.splitlines())
            start = time.perf_counter()
            try:
                answer = await http.post("/preview", data={"interests": box, "form": "subscribe"})
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1
            else:
                if answer.status_code == 200:
                    tally.latencies.append(time.perf_counter() - start)
                else:
                    tally.errors[f"HTTP {answer.status_code}"] += 1
            if pause:
                await asyncio.sleep(pause)


async def load(base: str, clients: int, duration: float, pause: float, papers: int) -> Tally:
    """Run `clients` typists against `base` for `duration` seconds."""
    phrases = title_phrases()
    tally = Tally()
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        warm = await http.post("/preview", data={"interests": "diffusion models"})
        warm.raise_for_status()
    until = time.perf_counter() + duration
    typists = [Typist(random.Random(n), phrases, papers) for n in range(clients)]
    await asyncio.gather(*(client(base, t, until, pause, tally) for t in typists))
    return tally


@contextmanager
def server(folder: Path, url: str, smtp_port: int) -> Iterator[str]:
    """`digest serve` in its own process on a free loopback port; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": url,
        "DIGEST_VAR_DIR": str(folder),
        "DIGEST_BASE_URL": base,
        "DIGEST_SECRET_KEY": secrets.token_urlsafe(32),
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(smtp_port),
        "DIGEST_SOURCES": "[]",
        "DIGEST_PREVIEW_PER_IP_MINUTE": "1000000",
    }
    log = (folder / "serve.log").open("wb")
    command = [sys.executable, "-m", "digest", "serve", "--host", "127.0.0.1", "--port"]
    process = subprocess.Popen([*command, str(port)], env=env, cwd=folder, stdout=log, stderr=log)
    try:
        _wait_until_up(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"digest serve exited with {process.returncode}; see serve.log")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("digest serve did not answer /healthz within 60 s")


def report(tally: Tally, duration: float, clients: int) -> None:
    """Print the counts and the latency percentiles."""
    done = tally.latencies
    total = len(done) + sum(tally.errors.values())
    errors = ", ".join(f"{n} {kind}" for kind, n in tally.errors.most_common()) or "none"
    print(f"{clients} clients for {duration:g} s: {total} requests, errors: {errors}")
    print(f"{len(tally.lines)} distinct lines typed; {total / duration:.1f} requests/s")
    if len(done) >= 2:
        cuts = statistics.quantiles(done, n=100, method="inclusive")
        figures = {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": max(done)}
        print("  ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in figures.items()))


def main() -> None:
    """Build the week, serve it, type at it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--per-day", type=int, default=1000, help="papers a day, 7 days")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between requests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        try:
            fill_week(engine, args.per_day, datetime.now(UTC))
        finally:
            engine.dispose()
        papers = 7 * args.per_day
        print(f"{papers} papers in the week; serving them with `digest serve`")
        with sink_process() as smtp_port, server(folder, url, smtp_port) as base:
            tally = asyncio.run(load(base, args.clients, args.duration, args.pause, papers))
        report(tally, args.duration, args.clients)


if __name__ == "__main__":
    main()
