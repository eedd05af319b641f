//! The document as one self-contained HTML page: semantic elements, inline CSS that also prints
//! well, no script, nothing loaded from elsewhere. Built with `maud`, so every piece of text is
//! escaped by construction: a value interpolated into the template is escaped by its `Render`
//! implementation, and only the stylesheet below, our own constant, goes in unescaped.

use maud::{DOCTYPE, Markup, PreEscaped, Render, html};

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

/// The page. The `"\n"` literals put each block on its own line, so the snapshot's diffs and
/// view-source read line by line; they are whitespace between elements, not content.
pub(crate) fn render(doc: &Document) -> String {
    let page = html! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            head {
                "\n"
                meta charset="utf-8"; "\n"
                meta name="viewport" content="width=device-width, initial-scale=1"; "\n"
                title { "Postmortem: " (Text(&doc.title)) } "\n"
                // Our own constant, no data in it; a `<style>`'s text is not entity-decoded, so it
                // goes in as it is.
                style { (PreEscaped(STYLE)) } "\n"
            } "\n"
            body {
                "\n"
                main {
                    "\n"
                    article {
                        "\n"
                        header {
                            "\n"
                            h1 { "Postmortem: " (Text(&doc.title)) } "\n"
                            p class="meta" { (line(&doc.meta)) } "\n"
                        } "\n"
                        @for section in &doc.sections {
                            section id=(section.id) {
                                "\n"
                                h2 { (Text(section.title)) } "\n"
                                @for block in &section.blocks {
                                    (block_html(block))
                                }
                            } "\n"
                        }
                        footer { p { (line(&doc.footer)) } } "\n"
                    } "\n"
                } "\n"
            } "\n"
        } "\n"
    };
    page.into_string()
}

fn block_html(block: &Block) -> Markup {
    html! {
        @match block {
            Block::Para(content) => { p { (line(content)) } "\n" }
            Block::Heading(title) => { h3 { (Text(title)) } "\n" }
            Block::Fields(fields) => {
                dl {
                    "\n"
                    @for (label, value) in fields {
                        dt { (Text(label)) } dd { (line(value)) } "\n"
                    }
                } "\n"
            }
            Block::List { ordered: true, items } => {
                ol { "\n" @for item in items { li { (line(item)) } "\n" } } "\n"
            }
            Block::List { ordered: false, items } => {
                ul { "\n" @for item in items { li { (line(item)) } "\n" } } "\n"
            }
            Block::Table { head, rows } => {
                table {
                    "\n"
                    thead { tr { @for h in head { th scope="col" { (Text(h)) } } } } "\n"
                    tbody {
                        "\n"
                        @for row in rows {
                            tr { @for cell in row { td { (line(cell)) } } } "\n"
                        }
                    } "\n"
                } "\n"
            }
        }
    }
}

fn line(spans: &Line) -> Markup {
    html! {
        @for span in spans {
            @match span {
                Span::Text(s) => {
                    @for (i, part) in s.split('\n').enumerate() {
                        @if i > 0 { br; "\n" }
                        (Text(part))
                    }
                }
                Span::Code(s) => code { (Text(s)) },
                Span::Strong(s) => strong { (Text(s)) },
                Span::Time(at, shown) => time datetime=(at.to_rfc3339()) { (Text(shown)) },
                Span::Severity(severity) => {
                    span class={ "sev sev-" (severity.as_str()) } { (severity.as_str()) }
                }
                // Only web links become links: a `javascript:` URL stays text.
                Span::Link(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    a href=(Text(url)) rel="noreferrer" { (Text(url)) }
                }
                Span::Link(url) => code { (Text(url)) },
            }
        }
    }
}

/// Text as the page shows it: escaped by maud's `str` renderer, carriage returns left out (a
/// note written on Windows reads the same as one written elsewhere).
#[derive(Clone, Copy, Debug)]
struct Text<'a>(&'a str);

impl Render for Text<'_> {
    fn render_to(&self, buffer: &mut String) {
        for piece in self.0.split('\r') {
            piece.render_to(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: &str) -> String {
        html! { (Text(text)) }.into_string()
    }

    #[test]
    fn escapes_markup_and_quotes() {
        // maud leaves `'` as it is: every attribute it writes is in double quotes.
        assert_eq!(
            rendered(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; 'y')&lt;/script&gt;"
        );
        assert_eq!(rendered("a\r\nb"), "a\nb");
    }

    #[test]
    fn only_web_links_are_links() {
        let html = line(&vec![
            Span::Link("javascript:alert(1)".into()),
            Span::Link("https://example.invalid/pr/42?a=1&b=\"2\"".into()),
        ])
        .into_string();
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(
            html.contains("href=\"https://example.invalid/pr/42?a=1&amp;b=&quot;2&quot;\""),
            "{html}"
        );
    }
}
