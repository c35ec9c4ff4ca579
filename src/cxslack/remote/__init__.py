"""The local store against Coralogix: pull, plan, push and migrate Notification Center connectors.

`Coralogix.connect()` opens the account the `cx` way (region, CX_API_KEY, profiles);
`shape` converts connectors without losing what cxslack does not model; `links` maps local
integrations to Coralogix's deployed Slack integrations; `plan` and `sync` are pull/plan/push;
`routing` finds the router rules that target connectors; `migrate` moves connectors inside
Coralogix with the migration journal.
"""

from __future__ import annotations

from types import TracebackType

from cxslack.coralogix.client import CoralogixClient
from cxslack.coralogix.integrations import Integrations
from cxslack.coralogix.notification_center import NotificationCenter
from cxslack.store import Store


class Coralogix:
    """One connection to the Coralogix account: Notification Center and Integrations."""

    def __init__(self, client: CoralogixClient):
        self.client = client
        self.nc = NotificationCenter(client)
        self.integrations = Integrations(client)

    @classmethod
    def connect(cls, store: Store | None = None, *, advisory: bool = False) -> Coralogix:
        """`advisory`: for a look-up that must not hold up what it advises on (the routing rules
        named before a removal, doctor): a short timeout and one retry."""
        from cxslack.coralogix.config import resolve_settings

        settings = resolve_settings(store=store or Store())
        if advisory:
            return cls(CoralogixClient(settings, timeout=5, max_retries=1))
        return cls(CoralogixClient(settings))

    @property
    def configured(self) -> bool:
        """An API key and a region are known (nothing was called)."""
        return bool(self.client.settings.api_key and self.client.settings.api_url)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Coralogix:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
