#!/usr/bin/env python3
"""A TCP reachability probe that publishes one Tidemark `cycle.completed` per scan to JetStream.

Needs nats-py (`pip install nats-py`; the tests install it with scripts/install-python-deps).
Each scan connects to every target; one that refuses or times out is a finding
`tcp:unreachable:<name>` of category `tcp`. One that answers again is absent from the next
cycles, and Tidemark resolves its finding after the clean cycles.

    NATS_URL=nats://127.0.0.1:4222 TIDEMARK_CLUSTER=pw-prod \
    PROBE_TARGETS="postgres=db.internal:5432 redis=cache.internal:6379" \
    python3 nats_probe.py            # a scan every PROBE_INTERVAL_SECS (60); --once: one scan

How it publishes (docs/distributed.md):
- To `tidemark.events.<cluster>.<type>`, each token sanitised as Tidemark does (anything but
  ASCII letters, digits, `-` and `_` becomes `_`): `tidemark.events.pw-prod.cycle_completed`.
- With the header `Nats-Msg-Id` = the event id: the stream drops a repeated id within its
  duplicate window (10 minutes by default), so publishing again never stores an event twice.
- It waits for the stream's ack: only then is the event in the log. No ack in time (a timeout, a
  reconnect, a leader election, no stream yet) means it may have landed or not: it publishes the
  same bytes with the same id again. An ack that says `duplicate` is success: an earlier attempt
  landed.
- `stream=` makes the server refuse the publish if the subject belongs to another stream.
- Nobody validates events on the way in: one that Tidemark cannot read is quarantined by every
  replica. Validate against schemas/v1 in your CI (docs/producer-guide.md).

The stream is created by Tidemark (`tidemark serve --nats`, `tidemark emit`), not here.
With --once the exit status is 0 when the cycle is in the stream, 1 when not.
"""

import asyncio
import json
import os
import re
import socket
import sys
import time
from datetime import datetime, timezone

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")  # comma-separated servers
NATS_CREDS = os.environ.get("NATS_CREDS")  # a .creds file, when the server wants one
STREAM = os.environ.get("TIDEMARK_STREAM", "TIDEMARK")
SUBJECT_PREFIX = os.environ.get("TIDEMARK_SUBJECT_PREFIX", "tidemark.events")
CLUSTER = os.environ.get("TIDEMARK_CLUSTER", socket.gethostname())
SOURCE = "nats_probe/" + socket.gethostname()
# "name=host:port name=host:port": the name goes into the check key, so keep it stable.
TARGETS = dict(target.split("=", 1) for target in os.environ.get("PROBE_TARGETS", "").split())
INTERVAL_SECS = float(os.environ.get("PROBE_INTERVAL_SECS", "60"))
ACK_TIMEOUT_SECS = float(os.environ.get("NATS_ACK_TIMEOUT_SECS", "5"))
PUBLISH_ATTEMPTS = 6  # waits 0.5, 1, 2, 4, 8 s between them, after each ack timeout

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid():
    """A ULID: 48 bits of Unix milliseconds, 80 random bits, in Crockford's base32."""
    bits = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(bits >> shift) & 31] for shift in range(125, -1, -5))


def subject_token(text):
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"


async def check(name, address):
    """A finding when `address` (host:port) does not accept a TCP connection, else None."""
    host, port = address.rsplit(":", 1)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=5)
        writer.close()
        return None
    except (OSError, asyncio.TimeoutError) as error:
        return {
            "check_key": f"tcp:unreachable:{name}",
            "category": "tcp",
            "severity": "error",
            "title": f"{name} does not accept connections",
            "detail": f"connecting to {address}: {error or 'timed out'}",
        }


async def scan():
    results = await asyncio.gather(*(check(name, addr) for name, addr in sorted(TARGETS.items())))
    return [finding for finding in results if finding]


def cycle_event(findings):
    now = datetime.now(timezone.utc)
    return {
        "id": new_ulid(),
        "schema": 1,
        "type": "cycle.completed",
        "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": SOURCE,
        "cluster": CLUSTER,
        # Every category this scan ran, found something or not: absence resolves findings.
        "data": {"cycle": now.strftime("%Y%m%dT%H%M%SZ"), "categories": ["tcp"], "findings": findings},
    }


async def publish(js, event):
    """Publishes until the stream acknowledges; returns the PubAck, or None."""
    subject = f"{SUBJECT_PREFIX}.{subject_token(event['cluster'])}.{subject_token(event['type'])}"
    payload = json.dumps(event).encode()  # every attempt: the same bytes, the same id
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            return await js.publish(subject, payload, timeout=ACK_TIMEOUT_SECS, stream=STREAM,
                                    headers={"Nats-Msg-Id": event["id"]})
        except (NatsTimeoutError, NoStreamResponseError, ServiceUnavailableError) as error:
            problem = type(error).__name__
        except APIError as error:  # refused (another stream, a limit): publishing again cannot help
            print(f"the stream refused the event: {error}", file=sys.stderr)
            return None
        if attempt < PUBLISH_ATTEMPTS:
            print(f"attempt {attempt}: no ack ({problem}); publishing the same id again",
                  file=sys.stderr)
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
    print(f"not acknowledged after {PUBLISH_ATTEMPTS} attempts: {problem}", file=sys.stderr)
    return None


async def log_error(error):
    print(f"nats: {error}", file=sys.stderr)  # nats-py reconnects by itself


async def main():
    once = sys.argv[1:] == ["--once"]
    if not TARGETS or sys.argv[1:] not in ([], ["--once"]):
        sys.exit(__doc__)
    connection = await nats.connect(NATS_URL.split(","), user_credentials=NATS_CREDS,
                                    error_cb=log_error)
    js = connection.jetstream()
    try:
        while True:
            event = cycle_event(await scan())
            ack = await publish(js, event)
            if ack is not None:
                outcome = "duplicate" if ack.duplicate else "published"
                print(f"{outcome} {event['id']} at stream sequence {ack.seq}")
            if once:
                return 0 if ack else 1
            await asyncio.sleep(INTERVAL_SECS)
    finally:
        await connection.drain()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
