"""The one-off emails the web app sends: confirmation, 'already subscribed', goodbye, ...

... and the link that confirms a new address.
"""

from __future__ import annotations

import logging
from typing import Any

from digest.delivery.transport import Envelope, SendError, SmtpTransport
from digest.mail.message import Rendered, compose, new_message_id
from digest.mail.render import AddressView, ConfirmView, GoodbyeView, ManageView
from digest.subscribers import SignUp
from digest.tokens import ADDRESS, CONFIRM, PREFERENCES, RESUBSCRIBE, make_address_token, make_token
from digest.web.state import WebState

log = logging.getLogger(__name__)


async def _send(state: WebState, kind: str, to: str, rendered: Rendered) -> bool:
    message = compose(
        rendered,
        to=to,
        settings=state.settings,
        message_id=new_message_id(state.settings),
        date=state.clock(),
    )
    envelope = Envelope.of(message, to=to, settings=state.settings)
    transport = SmtpTransport(state.settings.model_copy(update={"smtp_connections": 1}))
    try:
        await transport.send(envelope)
    except (SendError, OSError) as exc:
        log.warning("%s email to %s not sent: %s", kind, to, exc)
        state.emails[f"{kind}_failed"] += 1
        return False
    finally:
        await transport.close()
    state.emails[kind] += 1
    return True


def token(state: WebState, purpose: str, subscriber_id: int, version: int) -> str:
    """A signed link token stamped with the app's clock."""
    return make_token(state.secret, purpose, subscriber_id, version, now=state.clock())


async def send_sign_up(state: WebState, signup: SignUp) -> bool:
    """Send what a sign-up calls for (confirmation or preferences link); False if it failed."""
    assert signup.subscriber_id is not None
    if signup.action == "confirm":
        url = state.link(CONFIRM, token(state, CONFIRM, signup.subscriber_id, signup.token_version))
        rendered = state.renderer.confirm(ConfirmView(signup.email, url, signup.interests))
        return await _send(state, "confirm", signup.email, rendered)
    url = state.link(
        PREFERENCES, token(state, PREFERENCES, signup.subscriber_id, signup.token_version)
    )
    rendered = state.renderer.manage(ManageView(signup.email, url))
    return await _send(state, "manage", signup.email, rendered)


async def send_goodbye(state: WebState, email: str, subscriber_id: int, version: int) -> bool:
    """Confirm an unsubscription by email, with a link to subscribe again."""
    url = state.link(RESUBSCRIBE, token(state, RESUBSCRIBE, subscriber_id, version))
    return await _send(state, "goodbye", email, state.renderer.goodbye(GoodbyeView(email, url)))


async def send_address_check(state: WebState, row: Any, new: str) -> bool:
    """Ask the owner of `new` to confirm it as the subscriber's address; False if it failed."""
    change = (row.email, new)
    signed = make_address_token(state.secret, row.id, row.token_version, change, now=state.clock())
    view = AddressView(row.email, new, state.link(ADDRESS, signed))
    return await _send(state, "address", new, state.renderer.address(view))
