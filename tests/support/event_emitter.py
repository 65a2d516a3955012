"""A process that holds notification queues, for the crash tests to SIGKILL.

``python -m tests.support.event_emitter --dir D --url U --count N [--redis ADDR
--prefix P]`` starts a dispatcher with one endpoint (``hook``) at `U`, its local queue
under `D` (and a Redis stream in front with ``--redis``), emits `N` events and prints
``queued <id>`` after each emit returns (the event is then durable), ``done`` after the
last, and keeps delivering until it is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from mirror.coordination.redisconn import redis_from_config
from mirror.events.setup import EndpointSettings, build_dispatcher
from tests.events_helpers import blob_event


async def main(args: argparse.Namespace) -> None:
    client = None if args.redis is None else redis_from_config(args.redis, None, 0)
    hub = build_dispatcher(
        [EndpointSettings(name="hook", url=args.url, threshold=3, backoff=0.05)],
        directory=args.dir,
        redis=client,
        redis_prefix=args.prefix,
        poll_interval=0.05,
        claim_ttl=1.0,
    )
    hub.start()
    for n in range(args.count):
        event = blob_event(n)
        await hub.emit(event)
        sys.stdout.write(f"queued {event.id}\n")
        sys.stdout.flush()
    sys.stdout.write("done\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--redis")
    parser.add_argument("--prefix", default="mirror:")
    asyncio.run(main(parser.parse_args()))
