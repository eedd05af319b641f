#!/usr/bin/env bash
# Sending events to Tidemark with curl: one event as JSON, then a batch as NDJSON, printing each
# item's result (with jq when it is installed, else the answer as it came).
#
#   TIDEMARK_URL=http://127.0.0.1:7070 TIDEMARK_TOKEN=<a write token> bash curl.sh
#
# - Content-Type names the framing: application/json (one event, or a JSON array of events) or
#   application/x-ndjson (one event per line). When the server has tokens, send a write token.
# - --retry sends the same bytes again after a timeout, a refused or dropped connection, a 429 or
#   a 5xx (a replica's 503 `outcome_unknown` included): the same ids, so each event is stored once
#   and a retry of one that did arrive is answered `duplicate`.
# - Every item is answered: `accepted` (`published` on a replica) with its log position,
#   `duplicate` (stored already, at that position) or `rejected` with the reason. The status is
#   200 when nothing was rejected and 422 when something was (the rest is stored).
# - The ids are written out, so a second run of this script is answered `duplicate` throughout.
#   A real producer mints an id once per event (`uuidgen`, a ULID) and keeps it for its retries.
set -euo pipefail

url="${TIDEMARK_URL:-http://127.0.0.1:7070}"

# post CONTENT_TYPE < BODY: sends BODY, prints each item's result; fails unless all are stored.
post() {
  local answer status
  answer="$(mktemp)"
  # ${TIDEMARK_TOKEN:+...}: the Authorization header only when a token is set.
  status="$(curl --silent --show-error --retry 5 --retry-all-errors --retry-max-time 60 \
    --request POST "$url/v1/events" --header "Content-Type: $1" \
    ${TIDEMARK_TOKEN:+--header "Authorization: Bearer $TIDEMARK_TOKEN"} \
    --data-binary @- --output "$answer" --write-out '%{http_code}')"
  if command -v jq >/dev/null; then
    jq -r 'if .results then .results[] | "\(.status) \(.id) \(.seq // .reason)"
           else "\(.code): \(.message)" end' "$answer"
  else
    cat "$answer" && echo
  fi
  rm -f "$answer"
  if [ "$status" != 200 ]; then
    echo "HTTP $status: not every event is stored" >&2
    return 1
  fi
}

# One event: a note for the timeline, as a person or a chat-ops bot would add it.
post application/json <<'EVENT'
{"id": "example-note-0001", "schema": 1, "type": "note.added", "time": "2026-03-02T14:05:00Z", "source": "curl-example", "cluster": "example", "data": {"author": "oncall", "kind": "observation", "text": "checkout pods restarting"}}
EVENT

# A batch, one event per line: a deploy, then a probe's cycle with the finding it saw.
post application/x-ndjson <<'EVENTS'
{"id": "example-deploy-0001", "schema": 1, "type": "change.deployed", "time": "2026-03-02T14:00:00Z", "source": "curl-example", "cluster": "example", "data": {"kind": "deploy", "service": "checkout", "version": "v2.4.1"}}
{"id": "example-cycle-0001", "schema": 1, "type": "cycle.completed", "time": "2026-03-02T14:03:00Z", "source": "curl-example", "cluster": "example", "data": {"cycle": "c-0001", "categories": ["pods"], "findings": [{"check_key": "pod:crashloop:shop/checkout", "category": "pods", "severity": "error", "title": "checkout is in CrashLoopBackOff"}]}}
EVENTS
