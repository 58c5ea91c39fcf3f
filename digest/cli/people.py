"""Commands about subscribers: subscribe, unsubscribe, preview."""

from __future__ import annotations

from typing import Annotated

import typer

from digest import subscribers
from digest.cli import common
from digest.cli.common import console, err, fail
from digest.clock import utcnow
from digest.delivery.views import preview as preview_digest
from digest.mail.render import Renderer, RenderError
from digest.match.engine import InterestMatcher
from digest.models import Cadence
from digest.subscribers import SubscriberError

app = typer.Typer()


@app.command()
def subscribe(
    email: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    interest: Annotated[
        list[str], typer.Option("--interest", "-i", help="An interest line; repeat for more.")
    ],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Paris.")] = "UTC",
    hour: Annotated[int, typer.Option(help="Local hour to send at (0-23).")] = 7,
    cadence: Annotated[Cadence, typer.Option(help="How often to send.")] = Cadence.daily,
    max_papers: Annotated[int, typer.Option(help="At most this many papers a digest.")] = 20,
    weekday: Annotated[
        int, typer.Option(help="Weekly cadence: the day to send, 0 = Monday ... 6 = Sunday.")
    ] = 0,
    empty_note: Annotated[
        bool, typer.Option("--empty-note", help="Send a short note when nothing matched.")
    ] = False,
) -> None:
    """Add (or update) an active subscriber with their interests; no confirmation email.

    The values are checked as the sign-up page and the admin API check them.
    """
    with common.refusing(SubscriberError), common.engine() as engine:
        subscriber, created = subscribers.subscribe(
            engine,
            email,
            interest,
            timezone=timezone,
            send_hour=hour,
            cadence=cadence,
            max_papers=max_papers,
            weekday=weekday,
            empty_note=empty_note,
        )
    verb = "subscribed" if created else "updated"
    # Every line given is stored: an empty or invalid one is refused above.
    console.print(f"{verb} {subscriber.email} with {len(interest)} interest(s)")


@app.command()
def unsubscribe(email: Annotated[str, typer.Argument(help="The subscriber's address.")]) -> None:
    """Stop sending to a subscriber at once."""
    with common.refusing(SubscriberError), common.engine() as engine:
        done = subscribers.unsubscribe_address(engine, email)
    if done is None:
        fail(f"no subscriber {email}")
    console.print(f"unsubscribed {email}" if done else f"{email} was already unsubscribed")


@app.command()
def preview(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    html: Annotated[bool, typer.Option("--html", help="Print the HTML part.")] = False,
) -> None:
    """Print the digest a subscriber would get now (text, or HTML with --html)."""
    settings = common.settings()
    with common.engine(settings) as engine:
        with common.refusing(SubscriberError), engine.connect() as conn:
            subscriber = subscribers.find(conn, email)
        if subscriber is None:
            fail(f"no subscriber {email}")
        with common.refusing(RenderError, code=common.FAILED):
            result = preview_digest(
                engine, InterestMatcher(), Renderer(settings), subscriber.id, utcnow()
            )
    if result is None:
        err.print(f"nothing new matches the interests of {subscriber.email}")
        return
    rendered, _ = result
    typer.echo(rendered.html if html else f"Subject: {rendered.subject}\n\n{rendered.text}")
