//! Check-key hygiene: which keys look unstable, which part, and what to key by instead.
//!
//! The properties print the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`);
//! `PROPTEST_CASES=N` runs more or fewer cases than the defaults here.

mod support;

use proptest::prelude::*;
use tidemark_core::hygiene::{KeyAdvice, UnstableKind, analyze_check_key, stable_name};

use UnstableKind::{
    IpAddress, LongHex, PodTemplateHash, Port, PositionalIndex, Timestamp, Ulid, Uuid,
};

/// What a key should yield: `None` for a stable key, else its unstable parts (kind and text, in
/// key order) and the suggested key.
type Expected<'a> = Option<(&'a [(UnstableKind, &'a str)], &'a str)>;

/// Checks `analyze_check_key(key)` against `expected`. Each part's offsets must be those of its
/// text's next occurrence in the key, found independently with `str::find`; the advice must
/// name every part.
fn check(key: &str, expected: Expected<'_>) {
    let got = analyze_check_key(key);
    let Some((parts, suggestion)) = expected else {
        assert!(got.is_none(), "{key:?} should look stable, got {got:#?}");
        return;
    };
    let got = got.unwrap_or_else(|| panic!("{key:?} should be flagged"));
    assert_eq!(got.check_key, key);
    let kinds: Vec<_> = got
        .parts
        .iter()
        .map(|p| (p.kind, p.text.as_str()))
        .collect();
    assert_eq!(kinds, parts, "parts of {key:?}");
    let mut from = 0;
    for part in &got.parts {
        let start = from
            + key[from..]
                .find(&part.text)
                .expect("part text is in the key");
        assert_eq!(
            (part.start, part.end),
            (start, start + part.text.len()),
            "offsets of {:?} in {key:?}",
            part.text
        );
        assert!(
            got.advice.contains(&format!("`{}`", part.text)),
            "advice for {key:?} names {:?}: {}",
            part.text,
            got.advice
        );
        from = part.end;
    }
    assert_eq!(got.suggestion, suggestion, "suggestion for {key:?}");
    assert_eq!(
        analyze_check_key(&got.suggestion),
        None,
        "the suggestion for {key:?} looks stable"
    );
}

fn flagged<'a>(parts: &'a [(UnstableKind, &'a str)], suggestion: &'a str) -> Expected<'a> {
    Some((parts, suggestion))
}

// ---------------------------------------------------------------------------------------------
// Stable keys

const STABLE_KEYS: &[&str] = &[
    "pod:crashloop:dnd/dnd-backend",
    "proxied:domain:42",
    "pods:ns-17/app-42:crashloop",
    "node:notready:k3s-worker-2",
    "node:disk_pressure:k3s-master-1",
    // Longhorn volumes are named after their PersistentVolume, `pvc-<uuid>`: the volume's own
    // name for its whole life, so not flagged.
    "longhorn:replica_faulted:pvc-3f2a",
    "longhorn:replica_faulted:pvc-3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
    "statefulset:db-0:lagging",
    "sts:db-12:lagging",
    "pvc:pending:media/plex-config-0",
    "cert:expiring:media/plex-tls",
    "cert:expiring:api.example.com",
    "infra_drift:pvc_attached_no_consumer:media/plex-config",
    "ingress:unmanaged:default/webhook",
    "dns:record_missing:media/plex.example.com",
    "dns:aaaa_missing:plex.example.com",
    "image:pull_backoff:ghcr.io/acme/api:v1.4.2",
    "image:pull_backoff:ghcr.io/acme/api:1.4.2",
    "deployment:unavailable:monitoring/grafana",
    "admission_bypass:kube-system/coredns",
    "job:failed:backup/nightly-db",
    "pods:redis-master:oomkilled",
    "tracking:ghost:ingress/default/app-7",
    "dns:ns-17/app-42:nxdomain",
    "gpu:xid_error:node-a/gpu-3",
    "nic:flapping:k3s-worker-2/00:1a:2b:3c:4d:5e",
    "report:weekly:report-2024",
    "http:status_500:media/plex",
    "helm:drift:kube-system/traefik@v2.11.2",
    "job:failed:backup-28391",
];

#[test]
fn stable_keys_are_not_flagged() {
    for key in STABLE_KEYS {
        check(key, None);
    }
}

// ---------------------------------------------------------------------------------------------
// Unstable keys, by kind

#[test]
fn uuids_are_flagged() {
    // The seed's ephemeral pod UID.
    check(
        "pod:evicted:3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
        flagged(
            &[(Uuid, "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b")],
            "pod:evicted:<name>",
        ),
    );
    check(
        "pod:oomkilled:media/plex:uid=3F2A1B4C-5D6E-4F70-8A9B-0C1D2E3F4A5B",
        flagged(
            &[(Uuid, "3F2A1B4C-5D6E-4F70-8A9B-0C1D2E3F4A5B")],
            "pod:oomkilled:media/plex:uid=<name>",
        ),
    );
    // Only `pvc-` marks a volume name.
    check(
        "volume:detached:vol-3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
        flagged(
            &[(Uuid, "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b")],
            "volume:detached:vol-<name>",
        ),
    );
}

#[test]
fn ulids_are_flagged() {
    check(
        "job:stuck:01ARZ3NDEKTSV4RRFFQ69G5FAV",
        flagged(&[(Ulid, "01ARZ3NDEKTSV4RRFFQ69G5FAV")], "job:stuck:<name>"),
    );
    check(
        "run:failed:01hq3k5z8y7xw6v5t4s3r2q1p0:retry",
        flagged(
            &[(Ulid, "01hq3k5z8y7xw6v5t4s3r2q1p0")],
            "run:failed:<name>:retry",
        ),
    );
    // Starts with 8: no ULID (and not hex either).
    check("run:failed:81ARZ3NDEKTSV4RRFFQ69G5FAV", None);
}

#[test]
fn pod_template_hashes_are_flagged() {
    check(
        "pod:crashloop:dnd/dnd-backend-7f9d4b8c6-xk2p9",
        flagged(
            &[(PodTemplateHash, "7f9d4b8c6-xk2p9")],
            "pod:crashloop:dnd/dnd-backend",
        ),
    );
    check(
        "pod:pending:web-5d8f7c9b6-qzxvt:init",
        flagged(
            &[(PodTemplateHash, "5d8f7c9b6-qzxvt")],
            "pod:pending:web:init",
        ),
    );
    check(
        "replicaset:stalled:web-5d8f7c9b6",
        flagged(&[(PodTemplateHash, "5d8f7c9b6")], "replicaset:stalled:web"),
    );
    check(
        "daemonset:pod_pending:kube-system/fluentd-x7k2q",
        flagged(
            &[(PodTemplateHash, "x7k2q")],
            "daemonset:pod_pending:kube-system/fluentd",
        ),
    );
    check(
        "job:failed:backup-29540160-x7k2q",
        flagged(&[(PodTemplateHash, "29540160-x7k2q")], "job:failed:backup"),
    );
    // A dated Job name: the date is a timestamp, the pod suffix still a pod suffix.
    check(
        "job:failed:backup-20260302-x7k2q",
        flagged(
            &[(Timestamp, "20260302"), (PodTemplateHash, "x7k2q")],
            "job:failed:backup",
        ),
    );
}

#[test]
fn timestamps_are_flagged() {
    check(
        "backup:failed:nightly-2026-03-02T14:03:53Z",
        flagged(
            &[(Timestamp, "2026-03-02T14:03:53Z")],
            "backup:failed:nightly",
        ),
    );
    check(
        "probe:timeout:2026-03-02T14:03:53.123+01:00:dns",
        flagged(
            &[(Timestamp, "2026-03-02T14:03:53.123+01:00")],
            "probe:timeout:dns",
        ),
    );
    check(
        "backup:missed:2026-03-02:media/plex",
        flagged(&[(Timestamp, "2026-03-02")], "backup:missed:media/plex"),
    );
    check(
        "snapshot:stale:20260302T140353Z",
        flagged(&[(Timestamp, "20260302T140353Z")], "snapshot:stale"),
    );
    check(
        "export:failed:20260302140353",
        flagged(&[(Timestamp, "20260302140353")], "export:failed"),
    );
    check(
        "cron:late:report@1772409600",
        flagged(&[(Timestamp, "1772409600")], "cron:late:report"),
    );
    check(
        "trace:slow:1772409600123:checkout",
        flagged(&[(Timestamp, "1772409600123")], "trace:slow:checkout"),
    );
    check(
        "1772409600.25:probe:timeout",
        flagged(&[(Timestamp, "1772409600.25")], "probe:timeout"),
    );
    check(
        "backup 2026-03-02 14:03:53 failed",
        flagged(&[(Timestamp, "2026-03-02 14:03:53")], "backup failed"),
    );
    // Out of range: not a time.
    check("order:stuck:9999999999", None);
    check("order:stuck:2026-13-02", None);
}

#[test]
fn ip_addresses_are_flagged() {
    check(
        "node:unreachable:10.0.3.17",
        flagged(&[(IpAddress, "10.0.3.17")], "node:unreachable:<host>"),
    );
    check(
        "peer:lost:fe80::1ff:fe23:4567:890a",
        flagged(
            &[(IpAddress, "fe80::1ff:fe23:4567:890a")],
            "peer:lost:<host>",
        ),
    );
    check(
        "dns:mismatch:2001:db8:85a3:0:0:8a2e:370:7334:proxied",
        flagged(
            &[(IpAddress, "2001:db8:85a3:0:0:8a2e:370:7334")],
            "dns:mismatch:<host>:proxied",
        ),
    );
    check(
        "ingress:upstream/::ffff:10.0.3.17",
        flagged(
            &[(IpAddress, "::ffff:10.0.3.17")],
            "ingress:upstream/<host>",
        ),
    );
    // The record type before the address is a word, not a group.
    check(
        "dns:aaaa:2001:db8::1",
        flagged(&[(IpAddress, "2001:db8::1")], "dns:aaaa:<host>"),
    );
    // Not addresses: a part over 255, a version, too few groups.
    check("node:unreachable:10.0.3.256", None);
    check("chart:drift:v10.0.3.17", None);
    check("dns:cafe:42", None);
}

#[test]
fn ports_are_flagged() {
    // The seed's port that varies across restarts.
    check(
        "proxy:upstream_down:10.0.3.17:31847",
        flagged(
            &[(IpAddress, "10.0.3.17"), (Port, "31847")],
            "proxy:upstream_down:<host>",
        ),
    );
    check(
        "tls:handshake:api.example.com:8443",
        flagged(&[(Port, "8443")], "tls:handshake:api.example.com"),
    );
    check(
        "probe:refused:[fe80::1]:8443",
        flagged(
            &[(IpAddress, "fe80::1"), (Port, "8443")],
            "probe:refused:[<host>]",
        ),
    );
    check(
        "svc:web:port=30080",
        flagged(&[(Port, "port=30080")], "svc:web"),
    );
    check(
        "kube-proxy:nodePort-30080:web",
        flagged(&[(Port, "nodePort-30080")], "kube-proxy:web"),
    );
    // Not ports: after a plain word, too large, a word that merely ends in "port".
    check("proxied:domain:42", None);
    check("tls:handshake:api.example.com:70000", None);
    check("export:failed:support-12", None);
}

#[test]
fn long_hex_ids_are_flagged() {
    check(
        "container:restarted:3f2a9b8c7d6e5f40a1b2",
        flagged(
            &[(LongHex, "3f2a9b8c7d6e5f40a1b2")],
            "container:restarted:<name>",
        ),
    );
    check(
        "span:orphan:4bf92f3577b34da6",
        flagged(&[(LongHex, "4bf92f3577b34da6")], "span:orphan:<name>"),
    );
    check(
        "image:digest_drift:sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        flagged(
            &[(
                LongHex,
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            )],
            "image:digest_drift:sha256:<name>",
        ),
    );
    // Too short, or no digit.
    check("span:orphan:4bf92f3577b", None);
    check("span:orphan:deadbeefcafe", None);
}

#[test]
fn positional_indices_are_flagged() {
    // The seed's slot index in state that gets reordered.
    check(
        "state:slot-3:stale",
        flagged(&[(PositionalIndex, "slot-3")], "state:<stable-id>:stale"),
    );
    check(
        "containers[2]:restarting",
        flagged(
            &[(PositionalIndex, "[2]")],
            "containers[<stable-id>]:restarting",
        ),
    );
    check(
        "queue:item_7:stuck",
        flagged(&[(PositionalIndex, "item_7")], "queue:<stable-id>:stuck"),
    );
    check(
        "probe:idx=12:timeout",
        flagged(&[(PositionalIndex, "idx=12")], "probe:<stable-id>:timeout"),
    );
    check(
        "alert:rule#3:firing",
        flagged(&[(PositionalIndex, "#3")], "alert:rule#<stable-id>:firing"),
    );
    check(
        "lb:backend_position:3",
        flagged(&[(PositionalIndex, "position:3")], "lb:backend_<stable-id>"),
    );
    check(
        "raid:slot3:degraded",
        flagged(&[(PositionalIndex, "slot3")], "raid:<stable-id>:degraded"),
    );
}

#[test]
fn several_parts_are_flagged_in_key_order() {
    check(
        "pod:evicted:media/plex-7f9d4b8c6-xk2p9:3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
        flagged(
            &[
                (PodTemplateHash, "7f9d4b8c6-xk2p9"),
                (Uuid, "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"),
            ],
            "pod:evicted:media/plex:<name>",
        ),
    );
    check(
        "probe:10.0.3.17:8443:1772409600",
        flagged(
            &[
                (IpAddress, "10.0.3.17"),
                (Port, "8443"),
                (Timestamp, "1772409600"),
            ],
            "probe:<host>",
        ),
    );
    check(
        "1772409600:1772409601:probe",
        flagged(
            &[(Timestamp, "1772409600"), (Timestamp, "1772409601")],
            "probe",
        ),
    );
}

#[test]
fn advice_says_what_each_part_is_and_what_to_key_by() {
    let advice = |key: &str| analyze_check_key(key).map(|a| a.advice).unwrap_or_default();
    assert_eq!(
        advice("pod:crashloop:dnd/dnd-backend-7f9d4b8c6-xk2p9"),
        "`7f9d4b8c6-xk2p9` is a pod-template hash and pod suffix: they change on every \
         rollout; key by the workload (`dnd-backend`)."
    );
    assert!(advice("replicaset:stalled:web-5d8f7c9b6").contains("key by the Deployment (`web`)"));
    assert!(advice("job:failed:backup-29540160-x7k2q").contains("key by the CronJob (`backup`)"));
    assert!(advice("pod:evicted:3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b").contains("UUID"));
    assert!(advice("node:unreachable:10.0.3.17").contains("IP address"));
    assert!(advice("svc:web:port=30080").contains("is a port"));
    assert!(advice("state:slot-3:stale").contains("positional index"));
    assert!(advice("span:orphan:4bf92f3577b34da6").contains("long hex id"));
    assert!(advice("cron:late:report@1772409600").contains("Unix epoch time"));
    assert!(advice("job:stuck:01ARZ3NDEKTSV4RRFFQ69G5FAV").contains("ULID"));
    // One sentence per part.
    let two = advice("probe:10.0.3.17:8443");
    assert!(two.starts_with("`10.0.3.17` is an IP address") && two.contains(". `8443` is a port"));
}

#[test]
fn advice_round_trips_through_json() {
    let advice = analyze_check_key("proxy:upstream_down:10.0.3.17:31847").expect("flagged");
    let json = serde_json::to_string(&advice).expect("serialises");
    assert!(json.contains(r#""kind":"ip_address""#), "{json}");
    assert!(json.contains(r#""kind":"port""#), "{json}");
    let back: KeyAdvice = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, advice);
    assert_eq!(
        serde_json::to_string(&PodTemplateHash).expect("serialises"),
        r#""pod_template_hash""#
    );
}

// ---------------------------------------------------------------------------------------------
// stable_name

#[test]
fn stable_name_strips_generated_suffixes() {
    let cases = [
        // Deployment pod, ReplicaSet.
        ("dnd-backend-7f9d4b8c6-xk2p9", "dnd-backend"),
        ("web-5d8f7c9b6-qzxvt", "web"),
        ("web-5d8f7c9b6", "web"),
        ("dnd/dnd-backend-7f9d4b8c6-xk2p9", "dnd/dnd-backend"),
        // DaemonSet or Job pod.
        ("fluentd-x7k2q", "fluentd"),
        // CronJob pod: the scheduled minute and the pod suffix go.
        ("backup-29540160-x7k2q", "backup"),
        // A Job named with a number keeps it; only the pod suffix goes.
        ("backup-28391-x7k2q", "backup-28391"),
        // Unchanged: StatefulSet ordinals, ordinary names.
        ("db-0", "db-0"),
        ("db-12", "db-12"),
        ("app-42", "app-42"),
        ("ns-17", "ns-17"),
        ("plex-config", "plex-config"),
        ("redis", "redis"),
        ("redis-master", "redis-master"),
        ("k3s-worker-2", "k3s-worker-2"),
        ("crashloop", "crashloop"),
        ("x7k2q", "x7k2q"),
        ("-x7k2q", "-x7k2q"),
        ("", ""),
    ];
    for (name, stable) in cases {
        assert_eq!(stable_name(name), stable, "stable_name({name:?})");
        assert!(
            matches!(stable_name(name), std::borrow::Cow::Borrowed(_)),
            "stable_name({name:?}) borrows"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

const WORDS: &[&str] = &[
    "pod",
    "pods",
    "crashloop",
    "dnd",
    "backend",
    "node",
    "notready",
    "proxied",
    "domain",
    "media",
    "plex",
    "config",
    "cert",
    "expiring",
    "infra",
    "drift",
    "pvc",
    "attached",
    "consumer",
    "port",
    "nodeport",
    "slot",
    "index",
    "idx",
    "item",
    "position",
    "cafe",
    "dead",
    "beef",
    "face",
    "bad",
    "add",
    "fade",
    "deadbeef",
    "decade",
    "facade",
    "abcdef",
    "ffff",
    "fe",
    "x",
    "xkzpq",
    "bcdfghjklm",
    "ARZNDEKTSV",
    "T",
    "Z",
    "e",
    "uid",
    "sha",
    "a",
    "b",
    "c",
    "d",
    "f",
];

const SEPARATORS: &[&str] = &[
    ":", "/", "-", "_", ".", ",", ";", "|", "=", "@", " ", "#", "[", "]", "::", ":[",
];

fn letter_key() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            proptest::sample::select(WORDS),
            proptest::sample::select(SEPARATORS),
        ),
        1..10,
    )
    .prop_map(|pieces| {
        let mut key = String::new();
        for (word, sep) in pieces {
            key.push_str(word);
            key.push_str(sep);
        }
        key
    })
}

#[test]
fn keys_of_letters_and_separators_are_never_flagged() {
    support::assert_property("letter keys are stable", 2000, letter_key(), |key| {
        prop_assert_eq!(analyze_check_key(&key), None, "key {:?}", key);
        Ok(())
    });
}

fn uuid() -> impl Strategy<Value = String> {
    (any::<u128>(), any::<bool>()).prop_map(|(bits, upper)| {
        let hex = format!("{bits:032x}");
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        if upper { uuid.to_uppercase() } else { uuid }
    })
}

/// A stable key, a boundary of it (its start, its end, or before one of its field separators),
/// a field separator and a UUID.
fn key_with_uuid() -> impl Strategy<Value = (String, usize)> {
    let stable = prop_oneof![
        proptest::sample::select(STABLE_KEYS).prop_map(str::to_owned),
        letter_key(),
    ];
    (
        stable,
        any::<proptest::sample::Index>(),
        proptest::sample::select(&[":", "/", ",", ";", "|", "=", "@", " "][..]),
        uuid(),
    )
        .prop_filter_map("the uuid has a digit", |(key, at, sep, uuid)| {
            if !uuid.bytes().any(|c| c.is_ascii_digit()) {
                return None;
            }
            let mut boundaries = vec![0, key.len()];
            boundaries.extend(
                key.char_indices()
                    .filter(|&(_, c)| ":/,;|=@ ".contains(c))
                    .map(|(i, _)| i),
            );
            let i = *at.get(&boundaries);
            Some(if i == 0 {
                (format!("{uuid}{sep}{key}"), 0)
            } else {
                (
                    format!("{}{sep}{uuid}{}", &key[..i], &key[i..]),
                    i + sep.len(),
                )
            })
        })
}

#[test]
fn an_inserted_uuid_is_always_flagged_where_it_is() {
    support::assert_property(
        "inserted uuid is flagged",
        2000,
        key_with_uuid(),
        |(key, start)| {
            let advice = analyze_check_key(&key);
            let parts: Vec<_> = advice
                .iter()
                .flat_map(|a| &a.parts)
                .map(|p| (p.kind, p.start, p.end, p.text.as_str()))
                .collect();
            prop_assert_eq!(
                parts,
                vec![(Uuid, start, start + 36, &key[start..start + 36])],
                "key {:?}",
                key
            );
            Ok(())
        },
    );
}
