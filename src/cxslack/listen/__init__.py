"""`cxslack listen`: Slack events and button clicks in, over HTTP or Socket Mode, through a durable inbox.

    Listener(handler, inbox, signing_secret=…)   serve_http(host, port) → port, stop()
    Listener(handler, inbox, app_token=…, api_url=…)   serve_socket_mode(), stop()

`inbox` is the state's event inbox (`open_state(store).open_inbox()`); the listener closes it.

`handler(envelope)` gets each `event_callback` envelope, and each button click (a `block_actions`
envelope, see interactivity.py), once, in arrival order, and raises
RetryableError for "try again later" (an outage) or anything else for "never" (dead letter).
"""

from cxslack.events import RetryableError  # raised by handlers: re-exported for them and for tests
from cxslack.listen.listener import Listener
from cxslack.listen.worker import EventHandler
from cxslack.state.interface import Accepted, InvalidEnvelope, Outcome

__all__ = ["Accepted", "EventHandler", "InvalidEnvelope", "Listener", "Outcome", "RetryableError"]
