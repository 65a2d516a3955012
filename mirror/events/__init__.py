"""Webhook notifications: registry:2's event envelope, durable bounded per-endpoint
queues (local disk, Redis), HTTP delivery with the reference's retry and backoff.

Layer 3. See `mirror.events.dispatcher` for the request path, `mirror.events.delivery`
for the delivery loop and `mirror.events.queue` for the queue contract.
"""
