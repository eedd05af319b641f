//! Postmortems of seed 000's day, built from a log folded in memory: dnd-backend's crash loop with
//! three layered bugs, the ECR secret red herring, Longhorn and Prometheus healing themselves, a
//! stale Job deleted by hand, a flapping liveness probe and a check keyed by a pod name.
//! Long because the day is written out event by event, as the seed tells it.
//!
//! The snapshots under `snapshots/` are documentation too: regenerate them with
//! `UPDATE_EXPECT=1 cargo test -p tidemark-export` and read the diff.

use expect_test::expect_file;
use tidemark_core::event::{
    CURRENT_SCHEMA, ChangeDeployed, ChangeKind, CycleCompleted, FindingObservation,
    FindingResolved, IncidentChange, InventoryObserved, InventoryResource, ManualResolutionKind,
    NoteAdded, NoteKind, ResourceRef,
};
use tidemark_core::{Event, EventId, LogFold, Payload, Severity, Timestamp};
use tidemark_export::{
    BuildError, ChangeLink, Format, InitialState, Postmortem, Resolution, render,
};

const CLUSTER: &str = "pw-prod";
const INCIDENT: &str = "inc-2026-03-02-dnd";
/// 2026-03-02T14:00:00Z.
const START: i64 = 1_772_460_000;
const CYCLE_SECS: i64 = 300;

const BUG_1: &str = "RuntimeError: asyncio.run() cannot be called from a running event loop";
const BUG_2: &str = "UndefinedObject: operator class \"vector_cosine_ops\" does not exist for access method \"hnsw\"";
const BUG_3: &str =
    "InvalidTextRepresentation: invalid input value for enum sessionstatus: \"'idle'\"";
const IMPORT_ERROR: &str = "ImportError: cannot import name 'User' from 'app.models'";

const CRASHLOOP: &str = "pod:crashloop:dnd/dnd-backend";
const ECR: &str = "secret:ecr_expired:dnd/ecr-pull";
const REPLICA: &str = "longhorn:replica_faulted:pvc-3f2a";
const INSTANCE_MANAGER: &str = "longhorn:instance_manager_timeout:k3s-2";
const PROMETHEUS: &str = "pod:notready:monitoring/prometheus-0";
const STALE_JOB: &str = "job:stale:cardboard/postgres-backup";
const LIVEKIT: &str = "pod:liveness:livekit/livekit-server";
const PLEX: &str = "pod:readiness:media/plex-5d8f7c9b4-k2j7q";

/// A log with ids in order; cycles every five minutes, other events at a given minute.
struct Log {
    events: Vec<Event>,
    cycles: i64,
}

impl Log {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            cycles: 0,
        }
    }

    fn at(&mut self, secs_after_start: i64, payload: Payload) -> &mut Self {
        let id = format!("e{:03}", self.events.len());
        let time = Timestamp::from_unix_secs(START + secs_after_start);
        if let Some(last) = self.events.last() {
            assert!(last.time <= time, "the log goes back in time at {time}");
        }
        self.events.push(Event {
            id: EventId(id),
            schema: CURRENT_SCHEMA,
            time,
            source: "tidemark-probe".to_owned(),
            cluster: CLUSTER.to_owned(),
            payload,
        });
        self
    }

    /// An event `minute:second` after 14:00.
    fn event(&mut self, minute: i64, second: i64, payload: Payload) -> &mut Self {
        self.at(minute * 60 + second, payload)
    }

    fn cycle(&mut self, findings: Vec<FindingObservation>) -> &mut Self {
        self.cycles += 1;
        let cycle = format!("sweep-{:02}", self.cycles);
        self.at(
            self.cycles * CYCLE_SECS,
            Payload::CycleCompleted(CycleCompleted {
                cycle,
                categories: vec!["pods".into(), "storage".into(), "secrets".into()],
                findings,
            }),
        )
    }

    fn note(&mut self, minute: i64, author: &str, kind: NoteKind, text: &str) -> &mut Self {
        self.note_with_links(minute, author, kind, text, &[])
    }

    fn note_with_links(
        &mut self,
        minute: i64,
        author: &str,
        kind: NoteKind,
        text: &str,
        links: &[&str],
    ) -> &mut Self {
        self.event(
            minute,
            30,
            Payload::NoteAdded(NoteAdded {
                incident: Some(INCIDENT.into()),
                author: author.into(),
                kind,
                text: text.into(),
                links: links.iter().map(|l| (*l).to_owned()).collect(),
                check_keys: vec![],
            }),
        )
    }

    fn change(
        &mut self,
        minute: i64,
        version: &str,
        kind: ChangeKind,
        pr: Option<u32>,
        summary: &str,
    ) -> &mut Self {
        self.event(
            minute,
            0,
            Payload::ChangeDeployed(ChangeDeployed {
                service: "dnd-backend".into(),
                version: version.into(),
                kind,
                link: pr.map(|n| format!("https://git.example.invalid/dnd/pulls/{n}")),
                summary: (!summary.is_empty()).then(|| summary.to_owned()),
                incident: None,
                check_keys: vec![],
            }),
        )
    }

    fn fold(&self) -> LogFold {
        let mut fold = LogFold::new();
        for event in &self.events {
            fold.apply(event);
        }
        fold
    }
}

fn resource(kind: &str, namespace: &str, name: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: kind.into(),
        namespace: Some(namespace.into()),
        name: name.into(),
        uid: None,
    })
}

fn seen(
    check_key: &str,
    category: &str,
    severity: Severity,
    title: &str,
    detail: Option<&str>,
    resource: Option<ResourceRef>,
) -> FindingObservation {
    FindingObservation {
        check_key: check_key.into(),
        category: category.into(),
        severity,
        title: title.into(),
        detail: detail.map(str::to_owned),
        resource,
        informational: false,
    }
}

fn crashloop(detail: &str) -> FindingObservation {
    seen(
        CRASHLOOP,
        "pods",
        Severity::Critical,
        "dnd-backend is in CrashLoopBackOff",
        Some(detail),
        resource("Pod", "dnd", "dnd-backend-7c9f8d6b5-q2w4x"),
    )
}

fn ecr() -> FindingObservation {
    seen(
        ECR,
        "secrets",
        Severity::Error,
        "ECR pull secret dnd/ecr-pull is 44 h old (ECR tokens expire after 12 h)",
        Some("ImagePullBackOff: 401 Unauthorized from the registry"),
        resource("Secret", "dnd", "ecr-pull"),
    )
}

fn replica() -> FindingObservation {
    seen(
        REPLICA,
        "storage",
        Severity::Warning,
        "Longhorn volume pvc-3f2a is degraded: a replica faulted",
        Some("replica on node k3s-3 faulted; 2 of 3 replicas healthy"),
        resource("LonghornVolume", "longhorn-system", "pvc-3f2a"),
    )
}

fn instance_manager() -> FindingObservation {
    seen(
        INSTANCE_MANAGER,
        "storage",
        Severity::Warning,
        "Longhorn instance-manager on k3s-2 timed out",
        None,
        resource("Pod", "longhorn-system", "instance-manager-k3s-2"),
    )
}

fn prometheus() -> FindingObservation {
    seen(
        PROMETHEUS,
        "pods",
        Severity::Warning,
        "prometheus-0 is 1/2 Running",
        Some("container prometheus not ready: TSDB volume is read-only"),
        resource("Pod", "monitoring", "prometheus-0"),
    )
}

fn stale_job() -> FindingObservation {
    seen(
        STALE_JOB,
        "pods",
        Severity::Warning,
        "Job postgres-backup was created by hand and never cleaned up",
        Some("Completed 3 d ago; | kubectl get jobs shows it stuck"),
        resource("Job", "cardboard", "postgres-backup"),
    )
}

fn livekit() -> FindingObservation {
    seen(
        LIVEKIT,
        "pods",
        Severity::Warning,
        "livekit-server liveness probe failed",
        Some("Liveness probe failed: HTTP probe failed with statuscode: 503"),
        resource("Deployment", "livekit", "livekit-server"),
    )
}

fn plex() -> FindingObservation {
    seen(
        PLEX,
        "pods",
        Severity::Warning,
        "Plex readiness probe failed",
        Some("Readiness probe failed: connection refused"),
        resource("Pod", "media", "plex-5d8f7c9b4-k2j7q"),
    )
}

fn scan(minute: i64, log: &mut Log, n: u32) {
    let pvc = |uid: &str, name: &str| InventoryResource {
        uid: uid.into(),
        kind: "PersistentVolumeClaim".into(),
        namespace: Some("dnd".into()),
        name: name.into(),
        owners: vec![],
        uses: vec![],
    };
    log.event(
        minute,
        0,
        Payload::InventoryObserved(InventoryObserved {
            scan: format!("inventory-{n}"),
            kinds: vec!["PersistentVolumeClaim".into(), "Pod".into()],
            resources: vec![
                InventoryResource {
                    uid: "pod-postgres-0".into(),
                    kind: "Pod".into(),
                    namespace: Some("dnd".into()),
                    name: "postgres-0".into(),
                    owners: vec![],
                    uses: vec!["pvc-data".into()],
                },
                pvc("pvc-data", "postgres-data"),
                pvc("pvc-old", "postgres-data-before-migration"),
            ],
        }),
    );
}

/// Seed 000's day, from the first sweep to the follow-ups written after the close.
fn seed_000_day() -> Log {
    let mut log = Log::new();
    // 14:05 — the sweep: eight findings at once.
    log.cycle(vec![
        crashloop(BUG_1),
        ecr(),
        replica(),
        instance_manager(),
        prometheus(),
        stale_job(),
        livekit(),
        plex(),
    ]);
    log.event(
        7,
        0,
        Payload::IncidentOpened(IncidentChange {
            incident: INCIDENT.into(),
            title: Some("dnd-backend crash loop and the rest of the morning sweep".into()),
            severity: Some(Severity::Critical),
            check_keys: [
                CRASHLOOP,
                ECR,
                REPLICA,
                INSTANCE_MANAGER,
                PROMETHEUS,
                STALE_JOB,
                LIVEKIT,
                PLEX,
            ]
            .iter()
            .map(|k| (*k).to_owned())
            .collect(),
            summary: None,
        }),
    );
    log.note(
        8,
        "operator",
        NoteKind::Hypothesis,
        "dnd-backend cannot pull its image: the ECR pull secret in dnd is 44 h old and the \
         refresh CronJob in kube-system does not cover the namespace",
    );
    log.event(
        9,
        0,
        Payload::FindingResolved(FindingResolved {
            check_key: ECR.into(),
            kind: ManualResolutionKind::Recipe,
            by: Some("tidemark-agent".into()),
            reason: Some("secret re-created from a fresh ECR token".into()),
            recipe: Some("ecr-refresh".into()),
        }),
    );
    // 14:10
    log.cycle(vec![crashloop(BUG_1), replica(), prometheus(), stale_job()]);
    log.note(
        12,
        "agent",
        NoteKind::Observation,
        "the image pulls now; the crash moved inside the container: Uvicorn exits with code 3 \
         after RuntimeError in the lifespan handler",
    );
    log.note(
        14,
        "agent",
        NoteKind::Hypothesis,
        "init_db() calls Alembic's command.upgrade(), which calls asyncio.run() inside the \
         already running event loop",
    );
    // 14:15
    log.cycle(vec![crashloop(BUG_1), replica(), prometheus(), stale_job()]);
    scan(16, &mut log, 1);
    log.event(
        18,
        0,
        Payload::FindingResolved(FindingResolved {
            check_key: STALE_JOB.into(),
            kind: ManualResolutionKind::Manual,
            by: Some("operator".into()),
            reason: Some("kubectl delete job postgres-backup -n cardboard".into()),
            recipe: None,
        }),
    );
    // 14:20
    log.cycle(vec![crashloop(BUG_1), replica(), prometheus()]);
    log.change(
        24,
        "sha-a1b2c3d",
        ChangeKind::Deploy,
        Some(42),
        "run command.upgrade in asyncio.to_thread",
    );
    // 14:25 — bug #1 is fixed and bug #2 shows; Longhorn and Prometheus are healthy again.
    log.cycle(vec![crashloop(BUG_2), livekit()]);
    log.note(
        27,
        "operator",
        NoteKind::Decision,
        "roll back to sha-6c9c12b, the image pushed 7 minutes before, while we look",
    );
    log.change(28, "sha-6c9c12b", ChangeKind::Rollback, None, "");
    // 14:30 — the rollback crashes the same way.
    log.cycle(vec![crashloop(BUG_2)]);
    // Further back, the February image fails another way: the rollback's outcome, not a layer.
    log.change(31, "sha-74dfd42", ChangeKind::Rollback, None, "");
    log.note(
        32,
        "agent",
        NoteKind::Observation,
        "the rollback crashed with the same error: the bug is in the migration files, which \
         every image ships",
    );
    log.note(
        33,
        "operator",
        NoteKind::Decision,
        "fix forward; no more rollbacks",
    );
    log.note_with_links(
        34,
        "agent",
        NoteKind::Action,
        "patched the deployment to `sleep infinity` and ran `alembic upgrade head` in the pod: \
         migration 000 creates embedding as ARRAY(Float), not Vector(1536)",
        &["https://git.example.invalid/dnd/blob/main/migrations/000_initial_schema.py"],
    );
    // 14:35
    log.cycle(vec![crashloop(IMPORT_ERROR)]);
    scan(36, &mut log, 2);
    // Rolling forward brings bug #2 back: that layer again, not a new one.
    log.change(
        37,
        "sha-a1b2c3d",
        ChangeKind::Deploy,
        Some(42),
        "roll forward",
    );
    // 14:40
    log.cycle(vec![crashloop(BUG_2)]);
    log.change(
        44,
        "sha-e4f5a6b",
        ChangeKind::Deploy,
        Some(43),
        "embedding columns as Vector(1536) in 000_initial_schema",
    );
    // 14:45 — bug #2 is fixed and bug #3 shows.
    log.cycle(vec![crashloop(BUG_3), livekit()]);
    log.note(
        47,
        "agent",
        NoteKind::Action,
        "server_default=\"'idle'\" renders as DEFAULT '''idle''': removed the pre-quoting in \
         migrations 000, 001 and 008",
    );
    // 14:50, 14:55
    log.cycle(vec![crashloop(BUG_3)]);
    log.cycle(vec![crashloop(BUG_3)]);
    log.change(
        57,
        "sha-0d9e8f7",
        ChangeKind::Deploy,
        Some(44),
        "drop pre-quoted server_default values",
    );
    // 15:00 — the last bug is fixed: clean cycles from here on.
    log.cycle(vec![livekit()]);
    log.cycle(vec![]);
    log.cycle(vec![]);
    log.note(
        12 + 60,
        "operator",
        NoteKind::Resolution,
        "dnd-backend is 1/1 Running; all nine migrations ran and the 18 tables are there",
    );
    log.event(
        13 + 60,
        0,
        Payload::IncidentClosed(IncidentChange {
            incident: INCIDENT.into(),
            title: None,
            severity: None,
            check_keys: vec![],
            summary: Some("three layered bugs fixed in PRs #42, #43 and #44".into()),
        }),
    );
    // 15:15 — the liveness probe is still unsteady after the close.
    log.cycle(vec![]);
    // After the close: what the runbook should learn.
    log.note(
        95,
        "operator",
        NoteKind::Action,
        "add dnd (and every new namespace) to the ECR refresh CronJob",
    );
    log.note(
        96,
        "operator",
        NoteKind::Decision,
        "services that exit within seconds get a startup probe with a 30 s initial delay",
    );
    log
}

/// The events at the incident timeline's positions, as a store would return them.
fn timeline_events(fold: &LogFold, log: &Log, id: &str) -> Vec<(u64, Event)> {
    let incidents = fold.projections().incidents();
    let incident = incidents.incident(id).expect("the incident");
    incidents
        .timeline(&incident)
        .iter()
        .map(|entry| {
            let index = usize::try_from(entry.seq - 1).expect("small log");
            (entry.seq, log.events[index].clone())
        })
        .collect()
}

fn postmortem_of(log: &Log) -> Postmortem {
    let fold = log.fold();
    let events = timeline_events(&fold, log, INCIDENT);
    Postmortem::build(
        INCIDENT,
        fold.projections(),
        &events,
        fold.last_seq(),
        &Default::default(),
    )
    .expect("a postmortem")
}

#[test]
fn markdown_snapshot() {
    let pm = postmortem_of(&seed_000_day());
    expect_file!["snapshots/postmortem.md"].assert_eq(&pm.to_markdown());
}

#[test]
fn html_snapshot() {
    let pm = postmortem_of(&seed_000_day());
    expect_file!["snapshots/postmortem.html"].assert_eq(&pm.to_html());
}

#[test]
fn json_snapshot_round_trips() {
    let pm = postmortem_of(&seed_000_day());
    let json = pm.to_json();
    expect_file!["snapshots/postmortem.json"].assert_eq(&json);
    let back: Postmortem = serde_json::from_str(&json).expect("the JSON reads back");
    assert_eq!(back, pm);
}

#[test]
fn triage_has_a_row_per_finding_with_how_it_ended() {
    let pm = postmortem_of(&seed_000_day());
    let rows: Vec<(&str, Resolution)> = pm
        .triage
        .iter()
        .map(|r| (r.check_key.as_str(), r.resolution))
        .collect();
    let mut expected = vec![
        (CRASHLOOP, Resolution::Auto),
        (ECR, Resolution::Recipe),
        (REPLICA, Resolution::Auto),
        (INSTANCE_MANAGER, Resolution::Auto),
        (PROMETHEUS, Resolution::Auto),
        (STALE_JOB, Resolution::Manual),
        (LIVEKIT, Resolution::Auto),
        (PLEX, Resolution::Auto),
    ];
    let mut sorted = rows.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "{rows:?}");
    assert_eq!(pm.triage.len(), pm.incident.findings.len());

    let row = |key: &str| pm.triage.iter().find(|r| r.check_key == key).unwrap();
    assert_eq!(
        row(STALE_JOB).resolved_by.as_deref(),
        Some("operator: kubectl delete job postgres-backup -n cardboard")
    );
    assert_eq!(
        row(ECR).resolved_by.as_deref(),
        Some("ecr-refresh run by tidemark-agent: secret re-created from a fresh ECR token")
    );
    // The crash loop is triaged as it looked when it opened, not as it looked last.
    assert_eq!(row(CRASHLOOP).initial_detail.as_deref(), Some(BUG_1));
    assert_eq!(row(LIVEKIT).occurrences, 3, "it came back twice");

    // And the Markdown table says the same, one row per finding.
    let md = pm.to_markdown();
    let triage = section(&md, "## Triage");
    for (key, resolution) in &expected {
        let line = triage
            .lines()
            .find(|l| l.starts_with(&format!("| `{key}`")))
            .unwrap_or_else(|| panic!("no triage row for {key}:\n{triage}"));
        let cells: Vec<&str> = line.split(" | ").collect();
        assert!(cells[4].starts_with(resolution.as_str()), "{key}: {line}");
    }
    // The `|` in the stale Job's detail stays inside its cell.
    assert!(
        triage.contains(r"Completed 3 d ago; \| kubectl"),
        "{triage}"
    );
}

/// The text of a Markdown section, from its heading to the next one of level 2.
fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let start = md.find(heading).unwrap_or_else(|| panic!("no {heading}"));
    let rest = &md[start + heading.len()..];
    let end = rest.find("\n## ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

#[test]
fn the_three_layers_appear_in_order_with_the_changes_between_them() {
    let pm = postmortem_of(&seed_000_day());
    assert_eq!(pm.layers.len(), 1, "{:#?}", pm.layers);
    let dnd = &pm.layers[0];
    assert_eq!(dnd.resource, "Pod dnd/dnd-backend");
    let signatures: Vec<&str> = dnd.layers.iter().map(|l| l.signature.as_str()).collect();
    assert_eq!(signatures, [BUG_1, BUG_2, BUG_3]);
    assert_eq!(dnd.fixed_by.as_ref().unwrap().version, "sha-0d9e8f7");

    let md = pm.to_markdown();
    let layers = section(&md, "## Failure layers");
    let at = |needle: &str| {
        layers
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from\n{layers}"))
    };
    assert!(at("asyncio.run()") < at("vector_cosine_ops"));
    assert!(at("vector_cosine_ops") < at("sessionstatus"));
    assert!(at("vector_cosine_ops") < at("after deploy dnd-backend sha-a1b2c3d"));
    assert!(at("after deploy dnd-backend sha-a1b2c3d") < at("sessionstatus"));
    assert!(at("sessionstatus") < at("after deploy dnd-backend sha-e4f5a6b"));
    assert!(layers.contains("unchanged after rollback dnd-backend sha-6c9c12b"));
    // The second rollback's ImportError is told on layer 2, and the roll-forward brings it back.
    assert!(at("unchanged after rollback dnd-backend sha-6c9c12b") < at("ImportError"));
    assert!(
        layers.contains(
            "rollback dnd-backend sha-74dfd42 (14:31:00) failed differently: `ImportError"
        )
    );
    assert!(at("ImportError") < at("back after deploy dnd-backend sha-a1b2c3d (14:37:00)"));
    assert!(at("back after deploy dnd-backend sha-a1b2c3d") < at("sessionstatus"));
    assert!(
        pm.tl_dr
            .contains("rollback dnd-backend sha-74dfd42 failed differently (ImportError"),
        "{}",
        pm.tl_dr
    );
    assert!(layers.contains("Fixed by deploy dnd-backend sha-0d9e8f7"));
    // The TL;DR tells the same story.
    assert!(pm.tl_dr.contains("3 layers"), "{}", pm.tl_dr);
    assert!(
        pm.tl_dr
            .contains("rollback dnd-backend sha-6c9c12b changed nothing")
    );
    assert!(pm.tl_dr.contains("deploy dnd-backend sha-0d9e8f7 fixed it"));
}

#[test]
fn notes_follow_ups_flaps_and_orphans_are_told() {
    let pm = postmortem_of(&seed_000_day());
    assert_eq!(pm.notes.hypotheses.len(), 2);
    assert_eq!(pm.notes.resolution.len(), 1);
    // Actions and decisions after the close are follow-ups, not notes of the incident.
    assert_eq!(pm.notes.actions.len(), 2);
    assert_eq!(pm.notes.decisions.len(), 2);
    let follow_ups: Vec<&str> = pm.follow_ups.iter().map(|f| f.text.as_str()).collect();
    assert!(follow_ups[0].starts_with("add dnd"), "{follow_ups:#?}");
    assert!(
        follow_ups[1].starts_with("services that exit"),
        "{follow_ups:#?}"
    );
    assert!(
        follow_ups
            .iter()
            .any(|f| f.starts_with(&format!("stabilise check key {LIVEKIT}"))),
        "the flapping probe: {follow_ups:#?}"
    );
    assert!(
        follow_ups
            .iter()
            .any(|f| f.starts_with(&format!("stabilise check key {PLEX}"))),
        "the key with a pod name: {follow_ups:#?}"
    );
    assert_eq!(pm.flaps.len(), 1, "{:#?}", pm.flaps);
    assert_eq!(pm.flaps[0].check_key, LIVEKIT);
    assert_eq!(pm.orphans.len(), 1, "{:#?}", pm.orphans);
    assert_eq!(
        pm.orphans[0].resource.as_ref().unwrap().name,
        "postgres-data-before-migration"
    );
}

#[test]
fn html_and_markdown_escape_what_users_wrote() {
    let mut log = seed_000_day();
    log.note(
        97,
        "mallory <m@example.invalid>",
        NoteKind::Observation,
        "<script>alert(\"pwned\")</script> | <img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))",
    );
    let pm = postmortem_of(&log);

    let html = pm.to_html();
    assert!(!html.contains("<script"), "a script tag got through");
    assert!(!html.contains("<img"), "an img tag got through");
    assert!(html.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"));
    assert!(html.contains("mallory &lt;m@example.invalid&gt;"));
    // Self-contained: no external resources, no script at all.
    assert!(!html.contains("src=\""));
    assert!(!html.contains("<link"));
    assert!(!html.contains("url("));

    let md = pm.to_markdown();
    // Every `<` is escaped, except those of autolinks.
    for (i, _) in md.match_indices('<') {
        assert!(
            md[..i].ends_with('\\') || md[i..].starts_with("<https://"),
            "raw `<` in the Markdown: {}",
            &md[i.saturating_sub(40)..(i + 40).min(md.len())]
        );
    }
    assert!(md.contains(r"\<script\>alert"));
    assert!(md.contains(r"\*\*bold\*\*"));
    assert!(md.contains(r"\[link\](javascript:alert(1))"));
    // In the timeline table the note's `|` is escaped so the row keeps its three cells.
    let row = section(&md, "## Timeline (UTC)")
        .lines()
        .find(|l| l.contains("pwned"))
        .expect("the note in the timeline");
    assert!(
        row.contains(r#"\<script\>alert("pwned")\</script\> \| \<img"#),
        "{row}"
    );
    assert_eq!(row.matches(" | ").count(), 2, "{row}");
}

#[test]
fn backticks_people_wrote_are_code_and_a_lone_one_stays_a_backtick() {
    let mut log = seed_000_day();
    log.note(
        98,
        "operator",
        NoteKind::Action,
        "run `kubectl rollout restart deploy/dnd-backend` after each ``helm upgrade``; a lone ` stays",
    );
    let pm = postmortem_of(&log);
    let md = pm.to_markdown();
    let follow_up = section(&md, "## Follow-ups")
        .lines()
        .find(|l| l.contains("rollout restart"))
        .expect("the action after the close is a follow-up");
    assert!(
        follow_up.ends_with(
            "run `kubectl rollout restart deploy/dnd-backend` after each `helm upgrade`; a lone \\` stays"
        ),
        "{follow_up}"
    );
    let html = pm.to_html();
    assert!(
        html.contains("run <code>kubectl rollout restart deploy/dnd-backend</code> after each <code>helm upgrade</code>; a lone ` stays"),
        "{html}"
    );
    // The notes and the timeline say it the same way.
    assert!(
        section(&md, "## Timeline (UTC)").contains("`kubectl rollout restart deploy/dnd-backend`")
    );
}

#[test]
fn triage_says_each_finding_as_it_looked_and_its_state_when_the_incident_opened() {
    let pm = postmortem_of(&seed_000_day());
    let md = pm.to_markdown();
    let triage = section(&md, "## Triage");
    assert!(
        triage
            .contains("| Check key | Finding | Severity | Initial state | Resolution | Resolved |"),
        "{triage}"
    );
    let crashloop = triage
        .lines()
        .find(|l| l.starts_with(&format!("| `{CRASHLOOP}`")))
        .unwrap();
    let cells: Vec<&str> = crashloop.split(" | ").collect();
    assert_eq!(
        cells[1],
        format!("dnd-backend is in CrashLoopBackOff: `{BUG_1}`")
    );
    assert_eq!(cells[3], "active since 14:05:00 (critical)", "{crashloop}");
    let row = pm.triage.iter().find(|r| r.check_key == CRASHLOOP).unwrap();
    assert_eq!(
        row.initial_state,
        InitialState::Active {
            since: Timestamp::from_unix_secs(START + 5 * 60),
            severity: Some(Severity::Critical),
        }
    );
}

#[test]
fn output_does_not_depend_on_the_order_of_the_events_given() {
    let log = seed_000_day();
    let fold = log.fold();
    let events = timeline_events(&fold, &log, INCIDENT);
    let mut reversed = events.clone();
    reversed.reverse();
    let mut shuffled = events.clone();
    // A fixed interleaving: every third event first.
    shuffled.sort_by_key(|(seq, _)| (seq % 3, u64::MAX - seq));
    // Extra events (the whole log) change nothing either.
    let everything: Vec<(u64, Event)> = log
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| (i as u64 + 1, e.clone()))
        .rev()
        .collect();
    let build = |events: &[(u64, Event)]| {
        Postmortem::build(
            INCIDENT,
            fold.projections(),
            events,
            fold.last_seq(),
            &Default::default(),
        )
        .unwrap()
    };
    let reference = build(&events);
    for other in [&reversed, &shuffled, &everything] {
        let pm = build(other);
        assert_eq!(pm, reference);
        for format in [Format::Markdown, Format::Html, Format::Json] {
            assert_eq!(render(&pm, format), render(&reference, format), "{format}");
        }
    }
}

#[test]
fn unknown_incidents_and_missing_events_are_errors() {
    let log = seed_000_day();
    let fold = log.fold();
    let events = timeline_events(&fold, &log, INCIDENT);
    let err = Postmortem::build(
        "inc-nope",
        fold.projections(),
        &events,
        fold.last_seq(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, BuildError::UnknownIncident { id } if id == "inc-nope"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no incident \"inc-nope\" in the projections"
    );

    let missing = events[3].0;
    let mut partial = events.clone();
    partial.remove(3);
    let err = Postmortem::build(
        INCIDENT,
        fold.projections(),
        &partial,
        fold.last_seq(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, BuildError::MissingEvent { seq } if seq == missing),
        "{err:?}"
    );
}

#[test]
fn an_open_automatic_incident_says_so() {
    // The sweep alone, cut before anything is declared: the dnd findings are an automatic
    // incident that is still open.
    let full = seed_000_day();
    let log = Log {
        events: full.events[..1].to_vec(),
        cycles: 1,
    };
    let fold = log.fold();
    let id = "auto-pw-prod-1";
    let events = timeline_events(&fold, &log, id);
    let pm = Postmortem::build(
        id,
        fold.projections(),
        &events,
        fold.last_seq(),
        &Default::default(),
    )
    .unwrap();
    assert!(
        pm.tl_dr.contains("still open at log position 1"),
        "{}",
        pm.tl_dr
    );
    assert_eq!(pm.impact.ended_at, None);
    let md = pm.to_markdown();
    assert!(
        md.contains("- **Ended:** not yet (still open at log position 1)"),
        "{md}"
    );
    assert!(md.contains("## Follow-ups\n\nNone recorded.\n"), "{md}");
    assert!(
        pm.triage
            .iter()
            .all(|r| r.resolution == Resolution::StillActive)
    );
}

#[test]
fn formats_parse_with_a_clear_error() {
    assert_eq!("md".parse::<Format>().unwrap(), Format::Markdown);
    assert_eq!("Markdown".parse::<Format>().unwrap(), Format::Markdown);
    assert_eq!("html".parse::<Format>().unwrap(), Format::Html);
    assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
    let err = "pdf".parse::<Format>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown postmortem format \"pdf\": choose md (or markdown), html or json"
    );
}

/// A change of `service` at `minute` after 14:00, naming the crash loop's key when `explicit`.
fn change_at(
    log: &mut Log,
    minute: i64,
    service: &str,
    version: &str,
    kind: ChangeKind,
    explicit: bool,
) {
    log.event(
        minute,
        0,
        Payload::ChangeDeployed(ChangeDeployed {
            service: service.into(),
            version: version.into(),
            kind,
            link: None,
            summary: Some(format!("{service} {version}")),
            incident: None,
            check_keys: if explicit {
                vec![CRASHLOOP.into()]
            } else {
                vec![]
            },
        }),
    );
}

/// ADR 0007, "Changes during an incident": the postmortem lists every change of the timeline
/// with how it is linked, explicitly (it names a finding's key), by resource (its service is
/// the crash-looping workload) or only by time (another service, deployed while the incident
/// was open); a change after the incident closed is not there, and one linked only by time is
/// never what fixed it.
#[test]
fn the_changes_say_how_each_is_linked_to_the_incident() {
    let mut log = Log::new();
    log.cycle(vec![crashloop(BUG_1)]);
    change_at(
        &mut log,
        6,
        "dnd-migrations",
        "m-1",
        ChangeKind::Deploy,
        true,
    );
    log.cycle(vec![crashloop(BUG_1)]);
    change_at(
        &mut log,
        11,
        "dnd-backend",
        "workers-2",
        ChangeKind::Config,
        false,
    );
    log.cycle(vec![crashloop(BUG_1)]);
    change_at(
        &mut log,
        16,
        "dnd-migrations",
        "m-2",
        ChangeKind::Deploy,
        true,
    );
    change_at(
        &mut log,
        17,
        "web-frontend",
        "sha-51f00d7",
        ChangeKind::Deploy,
        false,
    );
    for _ in 0..3 {
        log.cycle(vec![]);
    }
    change_at(
        &mut log,
        31,
        "web-frontend",
        "sha-9ff8e7d",
        ChangeKind::Deploy,
        false,
    );
    let fold = log.fold();
    let id = "auto-pw-prod-1";
    let events = timeline_events(&fold, &log, id);
    let pm = Postmortem::build(
        id,
        fold.projections(),
        &events,
        fold.last_seq(),
        &Default::default(),
    )
    .unwrap();
    assert!(
        pm.impact.ended_at.is_some(),
        "closed before the last deploy"
    );

    let changes: Vec<(&str, &str, ChangeLink)> = pm
        .changes
        .iter()
        .map(|c| (c.service.as_str(), c.version.as_str(), c.link))
        .collect();
    assert_eq!(
        changes,
        [
            ("dnd-migrations", "m-1", ChangeLink::Explicit),
            ("dnd-backend", "workers-2", ChangeLink::Resource),
            ("dnd-migrations", "m-2", ChangeLink::Explicit),
            ("web-frontend", "sha-51f00d7", ChangeLink::Time),
        ]
    );
    let fixed_by = pm.layers[0].fixed_by.as_ref().expect("fixed");
    assert_eq!(
        fixed_by.version, "m-2",
        "the last linked change, not the last change"
    );

    let md = pm.to_markdown();
    let changes_md = section(&md, "## Changes");
    for line in [
        "| 14:06:00 | deploy `dnd-migrations` `m-1` | dnd-migrations m-1 | explicitly |",
        "| 14:11:00 | config change `dnd-backend` `workers-2` | dnd-backend workers-2 | by resource |",
        "| 14:17:00 | deploy `web-frontend` `sha-51f00d7` | web-frontend sha-51f00d7 | only by time |",
    ] {
        assert!(
            changes_md.contains(line),
            "{line} missing from {changes_md}"
        );
    }
    assert!(!md.contains("sha-9ff8e7d"), "{md}");
    let timeline_md = section(&md, "## Timeline");
    assert!(
        timeline_md.contains("deploy during the incident, linked only by time"),
        "{timeline_md}"
    );
    let html = pm.to_html();
    assert!(html.contains("only by time"), "{html}");
    let json: serde_json::Value = serde_json::from_str(&pm.to_json()).unwrap();
    let links: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["link"].as_str().unwrap())
        .collect();
    assert_eq!(links, ["explicit", "resource", "explicit", "time"]);
}

/// ADR 0007: a maintenance window of the incident's cluster open while it was is named, with
/// the incident's findings it covered; one that never overlapped it is not.
#[test]
fn maintenance_windows_open_during_the_incident_are_named_with_the_findings_they_covered() {
    use tidemark_core::event::{
        MaintenanceMatchers, MaintenanceSchedule, MaintenanceScheduled, MaintenanceSpan,
    };
    use tidemark_core::maintenance::WindowBook;
    let day = seed_000_day();
    let first = day.events[0].time;
    let window = |id: &str, name: &str, from: i64, to: i64| Event {
        id: EventId::from(id),
        schema: 1,
        time: first.plus_secs(30),
        source: "change-calendar".into(),
        cluster: day.events[0].cluster.clone(),
        payload: Payload::MaintenanceScheduled(MaintenanceScheduled {
            window: name.into(),
            by: "alice".into(),
            reason: "node pool upgrade".into(),
            matchers: MaintenanceMatchers {
                namespace: Some("dnd".into()),
                ..MaintenanceMatchers::default()
            },
            schedule: MaintenanceSchedule::Once(MaintenanceSpan {
                starts_at: first.plus_secs(from),
                ends_at: first.plus_secs(to),
            }),
        }),
    };
    let mut log = Log {
        events: day.events.clone(),
        cycles: day.cycles,
    };
    // After the first sweep: open during the incident, and one a year later.
    log.events
        .insert(1, window("w-during", "node-pool-upgrade", 60, 1_800));
    log.events.insert(
        2,
        window("w-later", "next-year", 366 * 86_400, 367 * 86_400),
    );
    let fold = log.fold();
    let events = timeline_events(&fold, &log, INCIDENT);
    let mut book = WindowBook::default();
    for (seq, event) in (1..).zip(&log.events) {
        book.apply(seq, event);
    }
    let books = std::collections::BTreeMap::from([(day.events[0].cluster.clone(), book)]);
    let pm = Postmortem::build(
        INCIDENT,
        fold.projections(),
        &events,
        fold.last_seq(),
        &books,
    )
    .unwrap();
    assert_eq!(pm.maintenance.len(), 1, "{:?}", pm.maintenance);
    let row = &pm.maintenance[0];
    assert_eq!(row.window, "node-pool-upgrade");
    assert_eq!(row.covers, "namespace=dnd");
    assert_eq!(
        row.open,
        vec![(first.plus_secs(60), first.plus_secs(1_800))]
    );
    assert!(
        row.covered_findings.iter().all(|k| k.contains("dnd")) && !row.covered_findings.is_empty(),
        "{:?}",
        row.covered_findings
    );
    let md = pm.to_markdown();
    let maintenance = section(&md, "## Maintenance windows");
    assert!(maintenance.contains("`node-pool-upgrade`"), "{maintenance}");
    assert!(maintenance.contains("namespace=dnd"), "{maintenance}");
    assert!(!maintenance.contains("next-year"), "{maintenance}");
    // Without the books, the section says there was none.
    let without = Postmortem::build(
        INCIDENT,
        fold.projections(),
        &events,
        fold.last_seq(),
        &Default::default(),
    )
    .unwrap();
    assert!(
        section(&without.to_markdown(), "## Maintenance windows")
            .contains("No maintenance window of the incident's clusters was open while it was.")
    );
}
