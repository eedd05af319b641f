#!/usr/bin/env bash
# End-to-end check of the distributed deployment on one machine: a 3-node NATS JetStream cluster
# from deploy/nats/cluster (ports moved to free ones, stores in a temp dir), two Tidemark
# replicas on loopback, a replay case published with `tidemark emit`; mid-way the stream's leader
# node and one replica are killed with SIGKILL and restarted. Passes when both replicas reach the
# end of the stream and serve identical state (events, findings, incidents, flaps, stuck, orphans,
# quarantine, checkpoints), equal to an embedded store that ingested the same log (in the stream's
# order), with every event of the input stored exactly once. Every wait is bounded; nothing is asserted on timing.
#
# Usage: deploy/e2e.sh   (env: E2E_COPIES=N copies of the replay case, default 120;
#                         E2E_KEEP=1 keeps the work directory; TIDEMARK_NATS_SERVER=PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
started_at=$SECONDS

copies="${E2E_COPIES:-120}"
nats_server="${TIDEMARK_NATS_SERVER:-$(scripts/install-nats-server)}"
cargo build --quiet --locked -p tidemark-cli
tidemark="$repo/target/debug/tidemark"

work="$(mktemp -d "${TMPDIR:-/tmp}/tidemark-e2e.XXXXXX")"
declare -A pids=()
cleanup() {
  local status=$?
  for name in "${!pids[@]}"; do
    kill -9 "${pids[$name]}" 2>/dev/null || true
  done
  [ -z "${emit_pid:-}" ] || kill -9 "$emit_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$status" -ne 0 ]; then
    echo "e2e: FAILED after $((SECONDS - started_at)) s; last lines of each log:" >&2
    for log in "$work"/*.log; do
      [ -e "$log" ] || continue
      echo "--- $log" >&2
      tail -n 15 "$log" >&2
    done
  fi
  if [ -n "${E2E_KEEP:-}" ]; then
    echo "e2e: work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "e2e [$((SECONDS - started_at))s]: $*" >&2; }
fail() { echo "e2e: FAIL: $*" >&2; exit 1; }

# Restarts a replica that exited because it could not provision the stream, as systemd's
# Restart=on-failure or Kubernetes would: `tidemark serve --nats` exits when the stream request
# times out (two replicas creating a new R3 stream at once, or a node that has just restarted
# and is not current yet). Counted and printed; any other exit is a failure.
replica_restarts=0
supervise() {
  local name=$1 replica
  case "$name" in replica_*) replica=${name#replica_} ;; *) return 1 ;; esac
  wait "${pids[$name]}" 2>/dev/null || true
  tail -n 3 "$work/replica-$replica.log" | grep -q 'provisioning stream' || return 1
  [ "$replica_restarts" -lt 5 ] || return 1
  replica_restarts=$((replica_restarts + 1))
  say "replica $replica exited: $(grep -m1 '^error:' <(tail -n 3 "$work/replica-$replica.log")); restarting it (restart $replica_restarts)"
  start_replica "$replica"
}

# Waits up to $1 seconds for the command after it to succeed, polling every 0.2 s; fails at
# once when a process this script started has died unexpectedly.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit)) name
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "$what: not after ${limit}s"
    for name in "${!pids[@]}"; do
      kill -0 "${pids[$name]}" 2>/dev/null || supervise "$name" || fail "$what: $name (pid ${pids[$name]}) exited; see its log below"
    done
    sleep 0.2
  done
}

# Free loopback ports below Linux's ephemeral range, so outgoing connections cannot take them.
used_ports=" "
free_port() {
  local port
  while :; do
    port=$((12000 + RANDOM % 8000))
    case "$used_ports" in *" $port "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      used_ports+="$port "
      echo "$port"
      return
    fi
  done
}

# --- The NATS cluster, from the shipped configs with only the ports moved ----------------------
declare -a client_port route_port monitor_port
for i in 1 2 3; do
  client_port[i]=$(free_port)
  route_port[i]=$(free_port)
  monitor_port[i]=$(free_port)
done
for i in 1 2 3; do
  mkdir -p "$work/n$i"
  script=""
  for j in 1 2 3; do
    script+="s/127\.0\.0\.1:$((4221 + j))\b/127.0.0.1:${client_port[j]}/g;"
    script+="s/127\.0\.0\.1:$((6221 + j))\b/127.0.0.1:${route_port[j]}/g;"
    script+="s/127\.0\.0\.1:$((8221 + j))\b/127.0.0.1:${monitor_port[j]}/g;"
  done
  sed -E "$script" "deploy/nats/cluster/n$i.conf" >"$work/n$i/nats.conf"
  if grep -En '127\.0\.0\.1:[468]22[234]\b' "$work/n$i/nats.conf"; then
    fail "deploy/nats/cluster/n$i.conf: a default port was not moved (the ports above changed?)"
  fi
  grep -q 'sync_interval: always' "$work/n$i/nats.conf" || fail "n$i.conf lost sync_interval: always"
  NATS_STORE_DIR="$work/n$i/store" "$nats_server" -t -c "$work/n$i/nats.conf" >/dev/null 2>&1 ||
    fail "nats-server rejects the rendered config of n$i"
done

start_nats() {
  local i=$1
  NATS_STORE_DIR="$work/n$i/store" "$nats_server" -c "$work/n$i/nats.conf" >>"$work/nats-n$i.log" 2>&1 &
  pids[nats$i]=$!
}
# Healthy: JetStream up on this node.
nats_healthy() { curl -fsS "http://127.0.0.1:${monitor_port[$1]}/healthz" >/dev/null; }
# The cluster: a meta leader elected and, in the leader's own view, every peer current (before
# that, creating an R3 stream times out), as docs/operator-guide.md waits for.
nats_cluster_ready() {
  local i
  for i in 1 2 3; do
    curl -fsS "http://127.0.0.1:${monitor_port[$i]}/jsz" 2>/dev/null | python3 -c '
import json, sys
meta = json.load(sys.stdin).get("meta_cluster", {})
peers = meta.get("replicas", [])
sys.exit(0 if meta.get("leader") and meta.get("cluster_size") == 3 and len(peers) == 2
         and all(peer.get("current") for peer in peers) else 1)' && return 0
  done
  return 1
}

say "starting the 3-node NATS cluster ($("$nats_server" --version 2>&1))"
for i in 1 2 3; do start_nats "$i"; done
for i in 1 2 3; do wait_for 60 "NATS node n$i healthy" nats_healthy "$i"; done
wait_for 60 "the NATS cluster formed (meta leader, every peer current)" nats_cluster_ready
nats_urls="nats://127.0.0.1:${client_port[1]},nats://127.0.0.1:${client_port[2]},nats://127.0.0.1:${client_port[3]}"

# --- The replay case: COPIES copies of the recorded logs, each copy its own clusters and ids --
input="$work/events.ndjson"
python3 - "$copies" "$input" crates/tidemark-cli/tests/fixtures/incident-day.ndjson \
  replay/auto-resolve-race/events.ndjson <<'PY'
import json, sys
copies, out, sources = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
events = [json.loads(line) for path in sources for line in open(path) if line.strip()]
with open(out, "w") as f:
    for copy in range(copies):
        for event in events:
            text = json.dumps(event, sort_keys=True)
            # Each copy: its own ids, clusters and incident ids, so copies are independent days.
            text = text.replace('"pw-prod"', f'"pw-prod-{copy}"').replace(
                "inc-2026-03-02-dnd", f"inc-2026-03-02-dnd-{copy}")
            event = json.loads(text)
            event["id"] = f'{event["id"]}-c{copy}'
            f.write(json.dumps(event) + "\n")
PY
expected=$(wc -l <"$input")
say "publishing $expected events (${copies} copies of incident-day and auto-resolve-race)"

# --- Two replicas ---------------------------------------------------------------------------
declare -A http_port=([a]=$(free_port) [b]=$(free_port))
start_replica() {
  local name=$1
  "$tidemark" serve --nats "$nats_urls" --stream-replicas 3 --db "$work/replica-$name.redb" \
    --listen "127.0.0.1:${http_port[$name]}" >>"$work/replica-$name.log" 2>&1 &
  pids[replica_$name]=$!
}
readyz() { curl -fsS "http://127.0.0.1:${http_port[$1]}/readyz"; }
healthz() { curl -fsS "http://127.0.0.1:${http_port[$1]}/healthz"; }
# The stream's last sequence, as replica a last saw it.
stream_last_seq() {
  curl -sS "http://127.0.0.1:${http_port[a]}/readyz" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["follower"]["stream_last_seq"])'
}
stream_reached() { [ "$(stream_last_seq)" -ge "$1" ]; }

# The first replica creates the stream; the second starts once the first is ready (the guide's order).
for name in a b; do
  start_replica "$name"
  wait_for 60 "replica $name ready" readyz "$name"
done

# --- Publish, kill the stream leader and replica b mid-way, restart them ---------------------
"$tidemark" emit --nats "$nats_urls" --stream-replicas 3 --max-in-flight 1 --json "$input" \
  >"$work/emit.json" 2>"$work/emit.log" &
emit_pid=$!

wait_for 120 "a third of the events in the stream" stream_reached $((expected / 3))
leader=$(curl -fsS "http://127.0.0.1:${monitor_port[1]}/jsz?streams=true" | python3 -c '
import json, sys
jsz = json.load(sys.stdin)
for account in jsz.get("account_details", []):
    for stream in account.get("stream_detail", []):
        if stream["name"] == "TIDEMARK":
            print(stream["cluster"]["leader"])
')
victim=""
for i in 1 2 3; do
  [ "$leader" = "tidemark-n$i" ] && victim=$i
done
[ -n "$victim" ] || fail "no leader for stream TIDEMARK in /jsz (got '$leader')"
say "killing NATS node n$victim (the stream leader) and replica b with SIGKILL at stream sequence $(stream_last_seq)"
kill -9 "${pids[nats$victim]}" "${pids[replica_b]}"
wait "${pids[nats$victim]}" "${pids[replica_b]}" 2>/dev/null || true
unset "pids[nats$victim]" "pids[replica_b]"

wait_for 120 "two thirds of the events in the stream with a node down" stream_reached $((expected * 2 / 3))
say "restarting n$victim and replica b at stream sequence $(stream_last_seq)"
start_nats "$victim"
start_replica b
wait_for 60 "restarted node n$victim healthy" nats_healthy "$victim"
wait_for 60 "restarted replica b answering /healthz" healthz b

deadline=$((SECONDS + 180))
while kill -0 "$emit_pid" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "tidemark emit did not finish in 180 s"
  sleep 0.2
done
emit_status=0
wait "$emit_pid" || emit_status=$?
[ "$emit_status" -eq 0 ] || fail "tidemark emit exited $emit_status: $(cat "$work/emit.log")"
say "emit: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("published", s["published"], "duplicates", s["duplicates"], "failed", s["failed"])' "$work/emit.json")"

# --- Convergence ----------------------------------------------------------------------------
caught_up() {
  readyz "$1" | python3 -c '
import json, sys
f = json.load(sys.stdin)["follower"]
sys.exit(0 if f["checkpoint"] == f["stream_last_seq"] == int(sys.argv[1]) else 1)' "$expected"
}
for name in a b; do wait_for 120 "replica $name at the end of the stream ($expected events)" caught_up "$name"; done

# An embedded store that ingested the same log, in the stream's order: what the replicas must
# show. With --max-in-flight 1 the producer retries a failed publish in place before sending the
# next, so the stream must hold the file's order even across the leader's death: checked here.
python3 - "http://127.0.0.1:${http_port[a]}" "$input" "$work/stream-order.ndjson" <<'PY'
import json, sys, urllib.request
base, input_path, out = sys.argv[1:]
events, after = [], None
while True:
    url = base + "/v1/events" + (f"?after={after}" if after is not None else "")
    with urllib.request.urlopen(url, timeout=30) as response:
        page = json.load(response)
    events.extend(stored["event"] for stored in page["events"])
    after = page.get("next")
    if after is None:
        break
with open(out, "w") as f:
    for event in events:
        f.write(json.dumps(event) + "\n")
file_ids = [json.loads(line)["id"] for line in open(input_path) if line.strip()]
moved = sum(1 for a, b in zip(file_ids, (e["id"] for e in events)) if a != b)
print(f"e2e: the stream holds the events in the file's order: {'yes' if moved == 0 else f'no, {moved} positions differ'}", file=sys.stderr)
if moved:
    sys.exit("e2e: FAIL: --max-in-flight 1 must keep the producer's order across faults")
PY
oracle_port=$(free_port)
"$tidemark" serve --db "$work/embedded.redb" --replay "$work/stream-order.ndjson" --listen "127.0.0.1:$oracle_port" \
  >>"$work/embedded.log" 2>&1 &
pids[embedded]=$!
http_port[embedded]=$oracle_port
wait_for 120 "the embedded store serving" readyz embedded

python3 - "$expected" "http://127.0.0.1:${http_port[a]}" "http://127.0.0.1:${http_port[b]}" \
  "http://127.0.0.1:$oracle_port" "$input" <<'PY'
import json, sys, urllib.parse, urllib.request

expected, replica_a, replica_b, embedded, input_path = int(sys.argv[1]), *sys.argv[2:]

def get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)

def without_recorded_at(value):
    """`recorded_at` is each store's own wall clock when it applied the event: it differs."""
    if isinstance(value, dict):
        return {k: without_recorded_at(v) for k, v in value.items() if k != "recorded_at"}
    if isinstance(value, list):
        return [without_recorded_at(v) for v in value]
    return value

def everything(base, path):
    """A view, every page of it: paged answers carry `next`, passed back as `after`; their
    lists are concatenated and `count` (per page) dropped."""
    merged, after = None, None
    while True:
        sep = "&" if "?" in path else "?"
        page = get(base + path + (f"{sep}after={urllib.parse.quote(str(after))}" if after is not None else ""))
        if not (isinstance(page, dict) and "next" in page):
            return without_recorded_at(page)
        if merged is None:
            merged = {k: v for k, v in page.items() if k not in ("next", "count")}
        else:
            for key, value in page.items():
                if isinstance(value, list):
                    merged[key].extend(value)
        after = page.get("next")
        if after is None:
            return without_recorded_at(merged)

def size(view):
    lists = [v for v in view.values() if isinstance(v, list)] if isinstance(view, dict) else [view]
    return sum(len(v) for v in lists if isinstance(v, list))

views = ["/v1/events", "/v1/findings", "/v1/incidents", "/v1/flaps", "/v1/stuck", "/v1/orphans",
         "/v1/orphans/graph", "/v1/quarantine"]
failures = []

def first_difference(x, y, where=""):
    if type(x) is not type(y):
        return f"{where}: {json.dumps(x)[:300]} != {json.dumps(y)[:300]}"
    if isinstance(x, dict):
        for key in sorted(set(x) | set(y)):
            if x.get(key) != y.get(key):
                return first_difference(x.get(key), y.get(key), f"{where}.{key}")
    if isinstance(x, list):
        for i, (p, q) in enumerate(zip(x, y)):
            if p != q:
                return first_difference(p, q, f"{where}[{i}]")
        if len(x) != len(y):
            return f"{where}: {len(x)} items != {len(y)} items"
    return f"{where}: {json.dumps(x)[:300]} != {json.dumps(y)[:300]}"

for view in views:
    a, b, e = (everything(base, view) for base in (replica_a, replica_b, embedded))
    if a != b:
        failures.append(f"{view}: replica a and replica b differ at {first_difference(a, b)}")
    elif a != e:
        failures.append(f"{view}: the replicas differ from the embedded store of the same log at {first_difference(a, e)}")
    else:
        print(f"e2e: {view}: identical on both replicas and the embedded store ({size(a)} items)", file=sys.stderr)

events = everything(replica_a, "/v1/events")["events"]
ids = [stored["event"]["id"] for stored in events]
input_ids = [json.loads(line)["id"] for line in open(input_path) if line.strip()]
if len(events) != expected or sorted(ids) != sorted(input_ids):
    failures.append(f"stored {len(events)} events, expected each of the {expected} input ids exactly once")

checkpoints = {name: get(base + "/readyz").get("follower", {}).get("checkpoint")
               for name, base in (("a", replica_a), ("b", replica_b))}
if set(checkpoints.values()) != {expected}:
    failures.append(f"checkpoints {checkpoints}, expected {expected} on both")
for base in (replica_a, replica_b):
    metrics = urllib.request.urlopen(base + "/metrics", timeout=30).read().decode()
    if f"tidemark_checkpoint {expected}\n" not in metrics or "tidemark_follower_diverged 0\n" not in metrics:
        failures.append(f"{base}/metrics: expected tidemark_checkpoint {expected} and tidemark_follower_diverged 0")

if failures:
    print("e2e: FAIL:\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"e2e: both replicas hold all {expected} events once, checkpoint {expected}, identical views", file=sys.stderr)
PY

say "PASS in $((SECONDS - started_at)) s ($replica_restarts supervised replica restart(s))"
