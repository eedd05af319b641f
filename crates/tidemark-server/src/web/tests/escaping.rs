//! Escaping: user text in content and attributes, path segments, and a hostile string in every
//! field of every page.

use std::collections::BTreeMap;

use tidemark_core::event::ChangeKind;
use tidemark_core::incidents::{ChangeRef, DifferentFailure};
use tidemark_core::orphans::{OrphanKind, SpanRef};

use super::*;
use crate::web::html::{encode_segment, link};

#[test]
fn escape_covers_markup_and_quotes() {
    // In content and in attributes (maud writes attributes in double quotes, so `'` stays).
    assert_eq!(
        link("/x?a=\"1\"&b", "", "<a href=\"x\">'&'</a>").into_string(),
        "<a href=\"/x?a=&quot;1&quot;&amp;b\">&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;</a>"
    );
}

#[test]
fn path_segments_encode_slashes_colons_and_spaces() {
    assert_eq!(
        encode_segment(HTTP),
        "http-5xx%3Apayments%2Fapi%3A%2Fv1%2Fcharge"
    );
    assert_eq!(encode_segment("a b%?#é"), "a%20b%25%3F%23%C3%A9");
    assert_eq!(encode_segment("plain-key_1.2~x"), "plain-key_1.2~x");
}

#[test]
fn user_text_is_escaped_everywhere() {
    let (orphan_list, graph) = orphans();
    let pages = [
        incident_html(),
        finding_page(&finding()),
        incidents_page(&other_incidents(), &[], false, 200, None),
        orphans_page(&orphan_list, false, &graph),
        not_found_page(SCRIPT),
    ];
    for html in &pages {
        assert_well_formed(html);
        assert!(!html.contains(SCRIPT));
        assert!(!html.contains("old-<b>"), "resource names are escaped");
    }
    assert!(pages[0].contains("&lt;script&gt;alert(1)&lt;/script&gt; the DB pool"));
    assert!(pages[0].contains("Checkout failing for EU customers &lt;script&gt;"));
    assert!(pages[1].contains("/v1/charge &lt;script&gt;"));
    assert!(pages[3].contains("api-old-&lt;b&gt;"));
    assert!(pages[4].contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

/// A string that, unescaped, would open an element or break out of an attribute.
const HOSTILE: &str = "<x-hostile a=\"1\"> \" onmouseover=\"x";

/// `text` with [`HOSTILE`] appended.
fn hostile(text: &mut String) {
    text.push_str(HOSTILE);
}

fn hostile_change(change: &mut ChangeRef) {
    hostile(&mut change.service);
    hostile(&mut change.version);
}

/// The fixtures with [`HOSTILE`] in every string a page shows or links (ids, clusters, keys,
/// titles, summaries, note kinds, signatures, changes, reasons, resources, spans, graph nodes).
fn hostile_pages() -> Vec<String> {
    let mut incident = incident();
    for text in [&mut incident.id, &mut incident.cluster, &mut incident.title] {
        hostile(text);
    }
    incident.summary.iter_mut().for_each(hostile);
    incident.merged_into = Some(format!("INC-7{HOSTILE}"));
    for finding in &mut incident.findings {
        hostile(&mut finding.cluster);
        hostile(&mut finding.check_key);
        finding.title.iter_mut().for_each(hostile);
    }
    incident.notes = BTreeMap::from([(format!("action{HOSTILE}"), 2)]);
    let rollback = change("api", "v1", ChangeKind::Rollback, 170, 1_000);
    for resource in &mut incident.layers {
        hostile(&mut resource.resource);
        resource.armed_by = Some(rollback.clone());
        for layer in &mut resource.layers {
            hostile(&mut layer.check_key);
            hostile(&mut layer.signature);
            layer.seen_again_after = vec![rollback.clone()];
            layer.failed_differently = vec![DifferentFailure {
                change: rollback.clone(),
                check_key: layer.check_key.clone(),
                signature: format!("ImportError{HOSTILE}"),
                seen_at: t(1_100),
                seen_seq: 180,
            }];
            layer.after_change.iter_mut().for_each(hostile_change);
            layer
                .changes_without_effect
                .iter_mut()
                .for_each(hostile_change);
        }
        resource.armed_by.iter_mut().for_each(hostile_change);
        for layer in &mut resource.layers {
            layer.seen_again_after.iter_mut().for_each(hostile_change);
            for failure in &mut layer.failed_differently {
                hostile_change(&mut failure.change);
            }
        }
    }
    let mut timeline = timeline();
    for line in &mut timeline {
        hostile(&mut line.summary);
        for touch in &mut line.touches {
            hostile(&mut touch.change);
            touch.check_key.iter_mut().for_each(hostile);
        }
    }
    let mut lanes = lanes();
    for lane in &mut lanes {
        hostile(&mut lane.check_key);
        for episode in &mut lane.flaps {
            hostile(&mut episode.started_because);
            episode.stopped_because.iter_mut().for_each(hostile);
        }
    }
    let mut finding = finding_with(true);
    for text in [
        &mut finding.finding.cluster,
        &mut finding.finding.check_key,
        &mut finding.finding.category,
        &mut finding.finding.title,
    ] {
        hostile(text);
    }
    finding.timeline = timeline.clone();
    for (_, episode) in &mut finding.flaps.items {
        hostile(&mut episode.started_because);
        episode.stopped_because.iter_mut().for_each(hostile);
    }
    let (mut orphan_list, mut graph) = orphans();
    let mut span_orphan = orphan_list[0].clone();
    span_orphan.kind = OrphanKind::OrphanSpan;
    span_orphan.resource = None;
    span_orphan.span = Some(SpanRef {
        span_id: "s-1".to_owned(),
        parent_span_id: None,
        service: "checkout".to_owned(),
        name: "POST /charge".to_owned(),
    });
    span_orphan.trace_id = Some("t-1".to_owned());
    orphan_list.push(span_orphan);
    for orphan in &mut orphan_list {
        hostile(&mut orphan.cluster);
        hostile(&mut orphan.reason);
        if let Some(resource) = &mut orphan.resource {
            hostile(&mut resource.kind);
            hostile(&mut resource.name);
            resource.namespace.iter_mut().for_each(hostile);
        }
        if let Some(tracking) = &mut orphan.tracking {
            hostile(&mut tracking.kind);
            hostile(&mut tracking.key);
            tracking.uid = Some(format!("uid{HOSTILE}"));
        }
        if let Some(span) = &mut orphan.span {
            hostile(&mut span.span_id);
            hostile(&mut span.service);
            hostile(&mut span.name);
        }
        orphan.trace_id.iter_mut().for_each(hostile);
    }
    for node in &mut graph.nodes {
        for text in [
            &mut node.cluster,
            &mut node.uid,
            &mut node.kind,
            &mut node.name,
        ] {
            hostile(text);
        }
        node.namespace.iter_mut().for_each(hostile);
        node.reason.iter_mut().for_each(hostile);
    }
    for edge in &mut graph.edges {
        for text in [&mut edge.cluster, &mut edge.from, &mut edge.to] {
            hostile(text);
        }
    }
    let mut unnamed = graph.nodes[0].clone();
    unnamed.name.clear();
    unnamed.uid = format!("u-unnamed{HOSTILE}");
    graph.nodes.push(unnamed);
    let mut list = other_incidents();
    list.push(incident.clone());
    vec![
        incident_page(&incident, &timeline, &lanes, 200, None),
        incidents_page(&list, &[], false, 200, None),
        finding_page(&finding),
        orphans_page(&orphan_list, false, &graph),
        not_found_page(HOSTILE),
    ]
}

/// No string from the store reaches a page unescaped, in content or in an attribute: with a
/// hostile string in every field, no page holds the element it would open or the attribute it
/// would add, and every page still has the expected shape.
#[test]
fn no_user_string_reaches_a_page_unescaped() {
    for html in hostile_pages() {
        assert_well_formed(&html);
        assert!(!html.contains("<x-hostile"), "an unescaped element");
        assert!(!html.contains("\" onmouseover"), "an unescaped attribute");
        assert!(html.contains("&lt;x-hostile a=&quot;1&quot;&gt; &quot; onmouseover=&quot;x"));
    }
}
