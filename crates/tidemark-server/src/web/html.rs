//! HTML building blocks shared by every page: escaping, percent-encoding, links, times,
//! durations, badges and the page shell with its one stylesheet.

use tidemark_core::Severity;
use tidemark_core::Timestamp;

/// The stylesheet every page inlines (no external requests: the pages work offline).
const STYLE: &str = include_str!("style.css");

/// Appends formatted text to a `String` (writing to a `String` cannot fail).
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        use ::std::fmt::Write as _;
        let _ = ::std::write!($out, $($arg)*);
    }};
}
pub(super) use w;

/// Escapes text for HTML element content and quoted attribute values. Every piece of data
/// that reaches a page goes through here.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters, so `/`,
/// `:`, `?`, `#` and `%` in a check key stay inside their segment.
pub(super) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            w!(out, "%{byte:02X}");
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

/// `<a href>` around escaped text; `class` may be empty.
pub(super) fn link(href: &str, class: &str, text: &str) -> String {
    if class.is_empty() {
        format!("<a href=\"{}\">{}</a>", escape(href), escape(text))
    } else {
        format!(
            "<a class=\"{class}\" href=\"{}\">{}</a>",
            escape(href),
            escape(text)
        )
    }
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
pub(super) fn time_html(at: Timestamp) -> String {
    let exact = escape(&at.to_rfc3339());
    format!(
        "<time datetime=\"{exact}\" title=\"{exact}\">{}<span class=\"utc\"> UTC</span></time>",
        date_time(at)
    )
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
pub(super) fn severity_badge(severity: Severity) -> String {
    let name = severity.as_str();
    format!("<span class=\"badge sev sev-{name}\">{name}</span>")
}

/// A state badge (`open`, `closed`, `merged`, `active`, `resolved`...).
pub(super) fn state_badge(state: &str) -> String {
    format!(
        "<span class=\"badge state state-{}\">{}</span>",
        class_token(state),
        escape(state)
    )
}

/// A monospace key.
pub(super) fn key_html(text: &str) -> String {
    format!("<code class=\"key\">{}</code>", escape(text))
}

/// Which top-level section a page belongs to (highlighted in the nav).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Section {
    Incidents,
    Orphans,
    None,
}

/// A whole page: the shell, the nav, the stylesheet and `body` (already HTML).
pub(super) fn page(title: &str, page_class: &str, section: Section, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + STYLE.len() + 2_048);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    w!(out, "<title>{} · Tidemark</title>\n", escape(title));
    w!(out, "<style>\n{STYLE}</style>\n</head>\n");
    w!(out, "<body class=\"{page_class}\">\n");
    out.push_str("<header class=\"topbar\">\n<a class=\"brand\" href=\"/\">");
    out.push_str(
        "<svg class=\"logo\" viewBox=\"0 0 24 24\" width=\"22\" height=\"22\" aria-hidden=\"true\">\
         <rect x=\"1\" y=\"1\" width=\"22\" height=\"22\" rx=\"6\" fill=\"#0e7490\"/>\
         <path d=\"M4 14c2.5-3 5-3 8 0s5.5 3 8 0\" fill=\"none\" stroke=\"#fff\" stroke-width=\"2\"/>\
         <path d=\"M4 9h16\" stroke=\"#a5f3fc\" stroke-width=\"2\"/></svg>",
    );
    out.push_str("<span>Tidemark</span></a>\n<nav class=\"nav\">");
    for (target, href, label) in [
        (Section::Incidents, "/", "Incidents"),
        (Section::Orphans, "/orphans", "Orphans"),
    ] {
        let class = if target == section {
            " class=\"active\""
        } else {
            ""
        };
        w!(out, "<a{class} href=\"{href}\">{label}</a>");
    }
    out.push_str("</nav>\n<span class=\"spacer\"></span>\n");
    out.push_str("<a class=\"api\" href=\"/v1/incidents\">JSON API</a>\n</header>\n");
    out.push_str("<main>\n");
    out.push_str(body);
    out.push_str("</main>\n<footer class=\"footer\">Tidemark · event-sourced incident timeline · times in UTC</footer>\n</body>\n</html>\n");
    out
}
