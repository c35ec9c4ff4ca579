"""`cxslack listen`: Slack events in, over HTTP (Events API) or Socket Mode, through a durable inbox.

    Listener(handler, inbox_dir, signing_secret=…)   serve_http(host, port) → port, stop()
    Listener(handler, inbox_dir, app_token=…, api_url=…)   serve_socket_mode(), stop()

`handler(envelope)` gets each `event_callback` envelope once, in arrival order, and raises
RetryableError for "try again later" (an outage) or anything else for "never" (dead letter).
"""

from cxslack.events import RetryableError  # raised by handlers: re-exported for them and for tests
from cxslack.listen.inbox import Accepted, Inbox, InvalidEnvelope, Outcome
from cxslack.listen.listener import Listener
from cxslack.listen.worker import EventHandler

__all__ = ["Accepted", "EventHandler", "Inbox", "InvalidEnvelope", "Listener", "Outcome", "RetryableError"]
