"""Verify and parse Magic Hour webhook deliveries.

Magic Hour signs each delivery with HMAC-SHA256 over ``"{timestamp}.{raw body}"`` keyed by the webhook
secret, hex-encoded in the ``magic-hour-event-signature`` header; the Unix timestamp (seconds) travels in
``magic-hour-event-timestamp``. Verification therefore needs the raw body bytes, before any JSON parsing.

Example:
    ```python
    from magic_hour_async import webhooks

    event = webhooks.verify(raw_body, request.headers)  # secret from MAGIC_HOUR_WEBHOOK_SECRET
    if event.type == "video.completed":
        print(event.payload.downloads[0].url)
    ```

The event ``type`` stays an open string: new event types are delivered as events with ``payload`` decoded by
the kind their prefix names, or kept as a plain dict when the prefix is unknown.

Receiving: :func:`create_app` is a ready aiohttp application and :func:`handler` the request handler behind it
(:mod:`._receiver`): they verify, answer 200 at once, drop duplicates and call your callback in the
background. Given ``client=``, events also resolve that client's waits the moment they arrive, while polling
continues at a slower safety cadence (:meth:`AsyncClient.accept_webhook_event`).

Example:
    ```python
    async def on_event(event: webhooks.WebhookEvent) -> None:
        print(event.type, event.project_id)

    app = webhooks.create_app(on_event, client=client)  # POST /webhooks/magic-hour
    ```
"""

from ._verify import (
    HANDLER_KEY,
    SECRET_ENV,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookCallback,
    WebhookEvent,
    WebhookHandler,
    WebhookReceiverStats,
    create_app,
    handler,
    parse,
    sign,
    verify,
)

__all__ = [
    "HANDLER_KEY",
    "SECRET_ENV",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookCallback",
    "WebhookEvent",
    "WebhookHandler",
    "WebhookReceiverStats",
    "create_app",
    "handler",
    "parse",
    "sign",
    "verify",
]
