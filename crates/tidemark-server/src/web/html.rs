//! HTML building blocks shared by every page: percent-encoding, links, times, durations, badges
//! and the page shell with its one stylesheet.
//!
//! Pages are `maud` templates: a value interpolated into one (`(value)`, `attr=(value)`) is
//! escaped by its `Render` implementation, so no string from the store can reach a page
//! unescaped, whichever function builds it. `PreEscaped` appears twice, for the stylesheet and
//! the live pages' script: our own constants, which must go in as they are (the text of a
//! `<style>` or a `<script>` is not entity-decoded, and both have `"` in them).

use std::fmt::Write as _;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use tidemark_core::Severity;
use tidemark_core::Timestamp;

/// The stylesheet every page inlines (no external requests: the pages work offline).
const STYLE: &str = include_str!("style.css");

/// The script of a page that updates itself (`live.js`), inlined like the stylesheet.
const LIVE_SCRIPT: &str = include_str!("live.js");

/// A page that updates itself: the stream of the events that change it, and the log position
/// it shows (the stream starts after it, so no event between the render and the subscription
/// is missed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    /// `/v1/stream` with the page's filters.
    pub stream: String,
    /// The position the page was rendered at.
    pub after: u64,
}

impl Live {
    /// `/v1/stream` with these filters (query-encoded), positions only (a page reloads; it
    /// needs no event), from `after` on.
    pub fn stream(filters: &[(&str, &str)], after: u64) -> Self {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in filters {
            query.append_pair(name, value);
        }
        query.append_pair("positions_only", "true");
        Self {
            stream: format!("/v1/stream?{}", query.finish()),
            after,
        }
    }
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters, so `/`,
/// `:`, `?`, `#` and `%` in a check key stay inside their segment.
pub(super) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a `String` cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A token safe in a class name: lowercase ASCII letters, digits and `-`.
pub(super) fn class_token(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// `/incidents/{id}`.
pub(super) fn incident_href(id: &str) -> String {
    format!("/incidents/{}", encode_segment(id))
}

/// `/findings/{cluster}/{check_key}`.
pub(super) fn finding_href(cluster: &str, check_key: &str) -> String {
    format!(
        "/findings/{}/{}",
        encode_segment(cluster),
        encode_segment(check_key)
    )
}

/// `<a href>` around text; `class` may be empty (no class attribute then).
pub(super) fn link(href: &str, class: &str, text: &str) -> Markup {
    html! { a class=[(!class.is_empty()).then_some(class)] href=(href) { (text) } }
}

/// `YYYY-MM-DD` of a time (UTC).
pub(super) fn date_part(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    text.split('T').next().unwrap_or(&text).to_owned()
}

/// `HH:MM:SS` of a time (UTC), fractions dropped.
pub(super) fn clock_part(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    let time = text.split('T').nth(1).unwrap_or("");
    time.get(..8).unwrap_or(time).to_owned()
}

/// `YYYY-MM-DD HH:MM:SS` (UTC).
pub(super) fn date_time(at: Timestamp) -> String {
    format!("{} {}", date_part(at), clock_part(at))
}

/// A `<time>` element: `YYYY-MM-DD HH:MM:SS UTC`, the exact RFC 3339 time in `datetime`.
pub(super) fn time_html(at: Timestamp) -> Markup {
    let exact = at.to_rfc3339();
    html! {
        time datetime=(exact) title=(exact) { (date_time(at)) span class="utc" { " UTC" } }
    }
}

/// A coordinate or length of a chart, to one decimal.
pub(super) fn dec1(value: f64) -> String {
    format!("{value:.1}")
}

/// A duration for people: `45s`, `12m 05s`, `3h 12m`, `2d 4h`.
pub(super) fn human_secs(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m {:02}s", secs / 60, secs % 60),
        3_600..86_400 => format!("{}h {:02}m", secs / 3_600, secs % 3_600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3_600),
    }
}

/// Seconds from `from` to `to`, zero when `to` is earlier.
pub(super) fn secs_between(from: Timestamp, to: Timestamp) -> u64 {
    to.saturating_duration_since(from).as_secs()
}

/// A severity badge: `<span class="badge sev sev-error">error</span>`.
pub(super) fn severity_badge(severity: Severity) -> Markup {
    let name = severity.as_str();
    html! { span class={ "badge sev sev-" (name) } { (name) } }
}

/// A state badge (`open`, `closed`, `merged`, `active`, `resolved`...).
pub(super) fn state_badge(state: &str) -> Markup {
    html! { span class={ "badge state state-" (class_token(state)) } { (state) } }
}

/// A monospace key.
pub(super) fn key_html(text: &str) -> Markup {
    html! { code class="key" { (text) } }
}

/// `<a href="#seq-N">#N</a>`.
pub(super) fn seq_link(seq: u64) -> Markup {
    html! { a class="seq-link" href={ "#seq-" (seq) } { "#" (seq) } }
}

/// A definition list of facts (label, value).
pub(super) fn facts(items: &[(&str, Markup)]) -> Markup {
    html! {
        dl class="facts" {
            @for (label, value) in items {
                div { dt { (label) } dd { (value) } }
            }
        } "\n"
    }
}

/// Which top-level section a page belongs to (highlighted in the nav).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Section {
    Incidents,
    Alerts,
    Maintenance,
    Orphans,
    None,
}

/// A whole page: the shell, the nav, the stylesheet and `body`. The `"\n"` literals here and
/// in the pages keep view-source readable: whitespace between blocks, not content.
pub(super) fn page(title: &str, page_class: &str, section: Section, body: Markup) -> String {
    live_page(title, page_class, section, body, None)
}

/// [`page`], updating itself from `live` when it is given (a page of the present, not of `at=`).
pub(super) fn live_page(
    title: &str,
    page_class: &str,
    section: Section,
    body: Markup,
    live: Option<&Live>,
) -> String {
    let page = html! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            head {
                "\n"
                meta charset="utf-8"; "\n"
                meta name="viewport" content="width=device-width, initial-scale=1"; "\n"
                title { (title) " · Tidemark" } "\n"
                style { "\n" (PreEscaped(STYLE)) } "\n"
            } "\n"
            body class=(page_class) data-live=[live.map(|l| &l.stream)]
                data-live-after=[live.map(|l| l.after)] {
                "\n"
                header class="topbar" {
                    "\n"
                    a class="brand" href="/" {
                        svg class="logo" viewBox="0 0 24 24" width="22" height="22"
                            aria-hidden="true" {
                            rect x="1" y="1" width="22" height="22" rx="6" fill="#0e7490" {}
                            path d="M4 14c2.5-3 5-3 8 0s5.5 3 8 0" fill="none" stroke="#fff"
                                stroke-width="2" {}
                            path d="M4 9h16" stroke="#a5f3fc" stroke-width="2" {}
                        }
                        span { "Tidemark" }
                    } "\n"
                    nav class="nav" {
                        @for (target, href, label) in [
                            (Section::Incidents, "/", "Incidents"),
                            (Section::Alerts, "/alerts", "Alerts"),
                            (Section::Maintenance, "/maintenance", "Maintenance"),
                            (Section::Orphans, "/orphans", "Orphans"),
                        ] {
                            @let class = (target == section).then_some("active");
                            a class=[class] href=(href) { (label) }
                        }
                    } "\n"
                    span class="spacer" {} "\n"
                    @if live.is_some() {
                        span class="live-state" hidden { "live" } "\n"
                    }
                    a class="api" href="/v1/incidents" { "JSON API" } "\n"
                } "\n"
                main { "\n" (body) } "\n"
                footer class="footer" {
                    "Tidemark · event-sourced incident timeline · times in UTC"
                } "\n"
                @if live.is_some() {
                    script { "\n" (PreEscaped(LIVE_SCRIPT)) } "\n"
                }
            } "\n"
        } "\n"
    };
    page.into_string()
}

/// A 404 page naming what was not found.
pub fn not_found_page(what: &str) -> String {
    let body = html! {
        section class="card head notfound" {
            h1 { "Not found" }
            p { (what) }
            p { a href="/" { "Back to incidents" } }
        } "\n"
    };
    page("Not found", "page-notfound", Section::None, body)
}
