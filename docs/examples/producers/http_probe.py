#!/usr/bin/env python3
"""A health-check probe that sends Tidemark one `cycle.completed` per scan over HTTP.

Standard library only (Python 3.8 or newer). Each scan GETs every target; a target that does not
answer 2xx or 3xx is a finding `http:down:<name>` of category `http`. A target that answers again
is simply absent from the next cycles, and Tidemark resolves its finding after the clean cycles.

    TIDEMARK_URL=http://127.0.0.1:7070 TIDEMARK_TOKEN=<a write token> TIDEMARK_CLUSTER=pw-prod \
    PROBE_TARGETS="plex=http://plex.media:32400/identity grafana=http://grafana/api/health" \
    python3 http_probe.py            # a scan every PROBE_INTERVAL_SECS (60); --once: one scan

How it sends (docs/producer-guide.md):
- An event gets its id once, when it is made (a ULID). A retry sends the same bytes, so Tidemark
  stores the event once and answers the retry `duplicate`, with the event's log position.
- It retries on network errors, timeouts, 429 and 5xx (a replica's 503 `outcome_unknown`: the
  event may be in the log already), with backoff; never on another 4xx, which retrying cannot fix.
- It reads the answer item by item: `accepted` (`published` on a replica) and `duplicate` are
  stored; `rejected` names the field at fault (the event is in Tidemark's quarantine): a bug here.
- A cycle it could not send is dropped: the next cycle says what is true then.

With --once the exit status is 0 when the cycle is stored, 1 when it was rejected or not sent.
"""

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

TIDEMARK_URL = os.environ.get("TIDEMARK_URL", "http://127.0.0.1:7070").rstrip("/")
TIDEMARK_TOKEN = os.environ.get("TIDEMARK_TOKEN")  # a write token, when the server has tokens
CLUSTER = os.environ.get("TIDEMARK_CLUSTER", socket.gethostname())
SOURCE = "http_probe/" + socket.gethostname()
# "name=url name=url": the name goes into the check key, so keep it stable (not the URL, which
# may change while the problem stays the same).
TARGETS = dict(target.split("=", 1) for target in os.environ.get("PROBE_TARGETS", "").split())
INTERVAL_SECS = float(os.environ.get("PROBE_INTERVAL_SECS", "60"))
SEND_ATTEMPTS = 6  # waits 0.5, 1, 2, 4, 8 s between them

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid():
    """A ULID: 48 bits of Unix milliseconds, 80 random bits, in Crockford's base32."""
    bits = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(bits >> shift) & 31] for shift in range(125, -1, -5))


def scan():
    """The findings of one scan: every target that does not answer."""
    findings = []
    for name, url in sorted(TARGETS.items()):
        try:
            with urllib.request.urlopen(url, timeout=5):
                continue  # 2xx, or 3xx followed to a 2xx: up
        except urllib.error.HTTPError as error:
            detail = f"GET {url} answered {error.code}"
        except OSError as error:  # refused, unknown host, timeout
            detail = f"GET {url} failed: {getattr(error, 'reason', error)}"
        findings.append({
            "check_key": f"http:down:{name}",
            "category": "http",
            "severity": "error",
            "title": f"{name} does not answer",
            "detail": detail,
        })
    return findings


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
        "data": {"cycle": now.strftime("%Y%m%dT%H%M%SZ"), "categories": ["http"], "findings": findings},
    }


def send(events):
    """POSTs events as NDJSON until Tidemark answers; returns its results, one per event, or None."""
    body = "".join(json.dumps(event) + "\n" for event in events).encode()  # every retry: same ids
    headers = {"Content-Type": "application/x-ndjson"}
    if TIDEMARK_TOKEN:
        headers["Authorization"] = f"Bearer {TIDEMARK_TOKEN}"
    for attempt in range(1, SEND_ATTEMPTS + 1):
        request = urllib.request.Request(f"{TIDEMARK_URL}/v1/events", body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)["results"]  # 200: every item stored
        except urllib.error.HTTPError as error:
            answer = error.read().decode(errors="replace")
            if error.code == 422:
                return json.loads(answer)["results"]  # some rejected, the others stored
            if error.code != 429 and error.code < 500:
                print(f"tidemark refused the request ({error.code}): {answer}", file=sys.stderr)
                return None
            problem = f"{error.code} {answer[:200]}"
        except OSError as error:  # refused, reset, timeout: the events may have arrived or not
            problem = str(getattr(error, "reason", error))
        if attempt < SEND_ATTEMPTS:
            print(f"attempt {attempt}: {problem}; sending the same ids again", file=sys.stderr)
            time.sleep(0.5 * 2 ** (attempt - 1))
    print(f"not sent after {SEND_ATTEMPTS} attempts: {problem}", file=sys.stderr)
    return None


def report(results):
    """Prints each item's result; answers whether every item is stored."""
    stored = results is not None
    for item in results or []:
        if item["status"] == "rejected":
            stored = False
            print(f"rejected {item['id']}: {item['reason']}", file=sys.stderr)
        else:
            print(f"{item['status']} {item['id']} at {item['seq']}")
    return stored


def main():
    once = sys.argv[1:] == ["--once"]
    if not TARGETS or sys.argv[1:] not in ([], ["--once"]):
        sys.exit(__doc__)
    while True:
        stored = report(send([cycle_event(scan())]))
        if once:
            sys.exit(0 if stored else 1)
        time.sleep(INTERVAL_SECS)


if __name__ == "__main__":
    main()
