//! The document as one self-contained HTML page: semantic elements, inline CSS that also prints
//! well, no script, nothing loaded from elsewhere, and every piece of text escaped.

use crate::document::{Block, Document, Line, Span};

const STYLE: &str = "
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --rule: #d1d9e0; --band: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.55 -apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif; }
main { max-width: 72rem; margin: 0 auto; padding: 2rem 1.5rem 3rem; }
h1 { font-size: 1.8rem; margin: 0 0 .4rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; padding-bottom: .25rem; border-bottom: 1px solid var(--rule); }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.meta { color: var(--muted); margin: 0; }
code { font: .88em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--band); padding: .1em .3em; border-radius: 4px; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid var(--rule); padding: .35rem .55rem; text-align: left; vertical-align: top; }
th { background: var(--band); }
tbody tr:nth-child(even) td { background: #fbfcfd; }
time { white-space: nowrap; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: .5rem 0; }
dt { font-weight: 600; }
dd { margin: 0; }
.sev { font-weight: 600; padding: 0 .35em; border-radius: 4px; }
.sev-info { background: #ddf4ff; } .sev-warning { background: #fff8c5; }
.sev-error { background: #ffebe9; } .sev-critical { background: #cf222e; color: #fff; }
#tl-dr p { font-size: 1.05rem; background: var(--band); border-left: 4px solid var(--ink); padding: .75rem 1rem; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .85rem; border-top: 1px solid var(--rule); padding-top: .5rem; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  section { break-inside: auto; }
  h2, h3 { break-after: avoid; }
  tr { break-inside: avoid; }
  .sev-critical { color: #000; background: none; border: 1px solid #000; }
  a { color: inherit; }
}
";

pub(crate) fn render(doc: &Document) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!(
        "<title>Postmortem: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<article>\n",
        escape(&doc.title)
    ));
    out.push_str(&format!(
        "<header>\n<h1>Postmortem: {}</h1>\n<p class=\"meta\">{}</p>\n</header>\n",
        escape(&doc.title),
        line(&doc.meta)
    ));
    for section in &doc.sections {
        out.push_str(&format!(
            "<section id=\"{}\">\n<h2>{}</h2>\n",
            section.id,
            escape(section.title)
        ));
        for block in &section.blocks {
            match block {
                Block::Para(content) => out.push_str(&format!("<p>{}</p>\n", line(content))),
                Block::Heading(title) => out.push_str(&format!("<h3>{}</h3>\n", escape(title))),
                Block::Fields(fields) => {
                    out.push_str("<dl>\n");
                    for (label, value) in fields {
                        out.push_str(&format!(
                            "<dt>{}</dt><dd>{}</dd>\n",
                            escape(label),
                            line(value)
                        ));
                    }
                    out.push_str("</dl>\n");
                }
                Block::List { ordered, items } => {
                    let tag = if *ordered { "ol" } else { "ul" };
                    out.push_str(&format!("<{tag}>\n"));
                    for item in items {
                        out.push_str(&format!("<li>{}</li>\n", line(item)));
                    }
                    out.push_str(&format!("</{tag}>\n"));
                }
                Block::Table { head, rows } => {
                    out.push_str("<table>\n<thead><tr>");
                    for h in head {
                        out.push_str(&format!("<th scope=\"col\">{}</th>", escape(h)));
                    }
                    out.push_str("</tr></thead>\n<tbody>\n");
                    for row in rows {
                        out.push_str("<tr>");
                        for cell in row {
                            out.push_str(&format!("<td>{}</td>", line(cell)));
                        }
                        out.push_str("</tr>\n");
                    }
                    out.push_str("</tbody>\n</table>\n");
                }
            }
        }
        out.push_str("</section>\n");
    }
    out.push_str(&format!(
        "<footer><p>{}</p></footer>\n</article>\n</main>\n</body>\n</html>\n",
        line(&doc.footer)
    ));
    out
}

fn line(spans: &Line) -> String {
    let mut out = String::new();
    for span in spans {
        match span {
            Span::Text(s) => out.push_str(&escape(s).replace('\n', "<br>\n")),
            Span::Code(s) => out.push_str(&format!("<code>{}</code>", escape(s))),
            Span::Strong(s) => out.push_str(&format!("<strong>{}</strong>", escape(s))),
            Span::Time(at, shown) => out.push_str(&format!(
                "<time datetime=\"{}\">{}</time>",
                escape(&at.to_rfc3339()),
                escape(shown)
            )),
            Span::Severity(severity) => out.push_str(&format!(
                "<span class=\"sev sev-{severity}\">{severity}</span>"
            )),
            // Only web links become links: a `javascript:` URL stays text.
            Span::Link(url) if url.starts_with("https://") || url.starts_with("http://") => out
                .push_str(&format!(
                    "<a href=\"{}\" rel=\"noreferrer\">{}</a>",
                    escape(url),
                    escape(url)
                )),
            Span::Link(url) => out.push_str(&format!("<code>{}</code>", escape(url))),
        }
    }
    out
}

/// Text as HTML character data or attribute value.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn only_web_links_are_links() {
        let html = line(&vec![
            Span::Link("javascript:alert(1)".into()),
            Span::Link("https://example.invalid/pr/42?a=1&b=\"2\"".into()),
        ]);
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(
            html.contains("href=\"https://example.invalid/pr/42?a=1&amp;b=&quot;2&quot;\""),
            "{html}"
        );
    }
}
