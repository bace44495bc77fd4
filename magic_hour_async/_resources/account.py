"""``client.v1.account``: the credit balance, tier and subscription of the account that owns the API key.

``GET /v1/account``. ``tier``, ``subscription.status`` and ``billing_interval`` are open strings: a value the
API adds later decodes as it arrives instead of failing the call.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from .._converter import decode
from .._models import WireModel
from .._request_options import RequestOptions, resolve

if TYPE_CHECKING:
    from .._client import AsyncClient

__all__ = [
    "Account",
    "AccountSubscription",
    "AsyncAccountResource",
    "SubscriptionDiscount",
    "SubscriptionPrice",
]


@attrs.frozen(kw_only=True)
class SubscriptionPrice(WireModel):
    """The price per billing interval, in the currency's smallest unit (``4900`` ``"usd"`` is $49.00)."""

    amount: int
    currency: str


@attrs.frozen(kw_only=True)
class SubscriptionDiscount(WireModel):
    """A discount on the price: a percentage or a fixed amount (the other one is ``None``)."""

    percent_off: float | None = None
    amount_off: int | None = None


@attrs.frozen(kw_only=True)
class AccountSubscription(WireModel):
    """The account's subscription plan.

    Attributes:
        name: the plan's display name (``"Pro"``); ``None`` when unknown. Use ``Account.tier`` in code.
        status: ``"active"`` or ``"past_due"`` (open: other values pass through).
        price: the price per billing interval, when known.
        discount: the discount applied, if any.
        billing_interval: ``"month"``, ``"year"`` or ``None`` when unknown.
        current_period_end: when the plan renews (or ends, see ``cancel_at_period_end``).
        cancel_at_period_end: the plan ends at ``current_period_end`` instead of renewing.
    """

    status: str
    name: str | None = None
    price: SubscriptionPrice | None = None
    discount: SubscriptionDiscount | None = None
    billing_interval: str | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False


@attrs.frozen(kw_only=True)
class Account(WireModel):
    """The account that owns the API key (``GET /v1/account``).

    Attributes:
        id: the account's id.
        email: its email address, when it has one.
        tier: ``"free"``, ``"creator"``, ``"pro"`` or ``"business"`` (open: other values pass through).
        credits: credits available to spend now.
        subscription: the plan, or ``None`` for an account without a subscription.
    """

    id: str
    tier: str
    credits: int
    email: str | None = None
    subscription: AccountSubscription | None = None


class AsyncAccountResource:
    """``client.v1.account``: ``GET /v1/account``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return "<AsyncAccountResource /v1/account>"

    async def get(self, *, request_options: RequestOptions | None = None) -> Account:
        """The credit balance, tier and subscription of the account that owns the API key.

        Example:
            ```python
            account = await client.v1.account.get()
            print(account.credits, account.tier)
            ```

        Args:
            request_options: per-call ``timeout``, ``additional_headers``, ``additional_params``.
        """
        sent = resolve("/v1/account", request_options)
        data = await self._client._transport.request(
            "GET", sent.path, headers=sent.headers, timeout=sent.timeout
        )
        return decode(data, Account)

    async def list(self, *, request_options: RequestOptions | None = None) -> Account:
        """The official SDK's name for :meth:`get` (the account is one object, not a list)."""
        return await self.get(request_options=request_options)


# Decoding resolves annotations by name; do it while this module is still their home.
for _cls in (SubscriptionPrice, SubscriptionDiscount, AccountSubscription, Account):
    attrs.resolve_types(_cls)
