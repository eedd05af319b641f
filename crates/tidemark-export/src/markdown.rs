//! The document as GitHub-flavoured Markdown, with every piece of text escaped so that user
//! text never turns into markup (emphasis, links, raw HTML, extra table cells).

use crate::document::{Block, Document, Line, Span};

/// Where inline content goes: table cells cannot hold line breaks, and `|` splits them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Flow,
    Cell,
}

pub(crate) fn render(doc: &Document) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# Postmortem: {}\n\n",
        text(&doc.title, Context::Flow)
    ));
    out.push_str(&line(&doc.meta, Context::Flow));
    out.push_str("\n\n");
    for section in &doc.sections {
        out.push_str(&format!("## {}\n\n", text(section.title, Context::Flow)));
        for block in &section.blocks {
            match block {
                Block::Para(content) => {
                    out.push_str(&line(content, Context::Flow));
                    out.push_str("\n\n");
                }
                Block::Heading(title) => {
                    out.push_str(&format!("### {}\n\n", text(title, Context::Flow)));
                }
                Block::Fields(fields) => {
                    for (label, value) in fields {
                        out.push_str(&format!("- **{label}:** {}\n", line(value, Context::Flow)));
                    }
                    out.push('\n');
                }
                Block::List { ordered, items } => {
                    for (i, item) in items.iter().enumerate() {
                        let marker = if *ordered {
                            format!("{}. ", i + 1)
                        } else {
                            "- ".to_owned()
                        };
                        // Continuation lines are indented to the item's content.
                        let indent = " ".repeat(marker.len());
                        let body = line(item, Context::Flow).replace('\n', &format!("\n{indent}"));
                        out.push_str(&format!("{marker}{body}\n"));
                    }
                    out.push('\n');
                }
                Block::Table { head, rows } => {
                    out.push_str(&format!("| {} |\n", head.join(" | ")));
                    out.push_str(&format!(
                        "|{}\n",
                        head.iter().map(|_| " --- |").collect::<String>()
                    ));
                    for row in rows {
                        let cells: Vec<String> =
                            row.iter().map(|cell| line(cell, Context::Cell)).collect();
                        out.push_str(&format!("| {} |\n", cells.join(" | ")));
                    }
                    out.push('\n');
                }
            }
        }
    }
    out.push_str("---\n\n");
    out.push_str(&line(&doc.footer, Context::Flow));
    out.push('\n');
    out
}

fn line(spans: &Line, context: Context) -> String {
    let mut out = String::new();
    for span in spans {
        let line_start = out.is_empty() || out.ends_with('\n');
        match span {
            Span::Text(s) => out.push_str(&text_at(s, context, line_start)),
            Span::Code(s) => out.push_str(&code(s, context)),
            Span::Strong(s) => out.push_str(&format!("**{}**", text_at(s, context, false))),
            Span::Time(_, shown) => out.push_str(&text_at(shown, context, false)),
            Span::Severity(severity) => out.push_str(&format!("**{severity}**")),
            Span::Link(url) if is_plain_web_link(url) => out.push_str(&format!("<{url}>")),
            Span::Link(url) => out.push_str(&code(url, context)),
        }
    }
    out
}

/// An http(s) URL that can be written as an autolink as it is.
fn is_plain_web_link(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '|'))
}

/// User text as Markdown that shows exactly that text: markup characters are backslash-escaped
/// (`_` only where it could start or end emphasis, so `server_default` stays readable), block
/// markers at the start of a line too; line breaks become hard breaks, or spaces in a cell.
fn text(s: &str, context: Context) -> String {
    text_at(s, context, true)
}

/// [`text`], where `line_start` says whether `s` starts a line of the output.
fn text_at(s: &str, context: Context, mut line_start: bool) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\r' => continue,
            '\n' => {
                match context {
                    Context::Cell => out.push(' '),
                    Context::Flow => out.push_str("\\\n"),
                }
                line_start = true;
                continue;
            }
            // Leading blanks would make an indented code block: drop them.
            ' ' | '\t' if line_start => continue,
            _ => {}
        }
        if std::mem::take(&mut line_start) {
            if matches!(c, '#' | '-' | '+' | '=') {
                out.push('\\');
                out.push(c);
                continue;
            }
            // `1.` or `1)` at the start of a line would start a list.
            let digits_end = chars[i - 1..]
                .iter()
                .position(|d| !d.is_ascii_digit())
                .map_or(chars.len(), |p| i - 1 + p);
            if digits_end > i - 1 && matches!(chars.get(digits_end), Some('.' | ')')) {
                out.extend(&chars[i - 1..digits_end]);
                out.push('\\');
                out.push(chars[digits_end]);
                i = digits_end + 1;
                continue;
            }
        }
        push_escaped(&mut out, &chars, i - 1, context);
    }
    out
}

fn push_escaped(out: &mut String, chars: &[char], i: usize, context: Context) {
    let c = chars[i];
    let word = |j: Option<usize>| {
        j.and_then(|j| chars.get(j))
            .is_some_and(|c| c.is_alphanumeric())
    };
    match c {
        // A backslash only escapes ASCII punctuation (CommonMark 2.4): `\dt` shows as it is.
        // Before punctuation, a line end or the end of the text (whatever follows) it is
        // doubled, so it stays a backslash.
        '\\' if chars
            .get(i + 1)
            .is_some_and(|n| !n.is_ascii_punctuation() && *n != '\n' && *n != '\r') =>
        {
            out.push('\\')
        }
        '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '~' => {
            out.push('\\');
            out.push(c);
        }
        '|' if context == Context::Cell => out.push_str("\\|"),
        '|' => out.push('|'),
        '_' if !(word(i.checked_sub(1)) && word(Some(i + 1))) => out.push_str("\\_"),
        '&' if chars
            .get(i + 1)
            .is_some_and(|n| n.is_alphanumeric() || *n == '#') =>
        {
            out.push_str("\\&")
        }
        '!' if chars.get(i + 1) == Some(&'[') => out.push_str("\\!"),
        _ => out.push(c),
    }
}

/// A code span that shows `s` as it is, whatever backticks it holds.
fn code(s: &str, context: Context) -> String {
    let s: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    // In a table cell `|` ends the cell even inside a code span; GFM takes `\|` there.
    let s = match context {
        Context::Cell => s.replace('|', "\\|"),
        Context::Flow => s,
    };
    let longest_run = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_user_text_is_escaped() {
        assert_eq!(
            text("<script>alert(1)</script>", Context::Flow),
            "\\<script\\>alert(1)\\</script\\>"
        );
        assert_eq!(text("a | b", Context::Cell), "a \\| b");
        assert_eq!(text("a | b", Context::Flow), "a | b");
        assert_eq!(
            text("*bold* [x](y)", Context::Flow),
            "\\*bold\\* \\[x\\](y)"
        );
        assert_eq!(text("server_default", Context::Flow), "server_default");
        assert_eq!(text("_emph_", Context::Flow), "\\_emph\\_");
        assert_eq!(text("# not a heading", Context::Flow), "\\# not a heading");
        assert_eq!(text("PR #42", Context::Flow), "PR #42");
        assert_eq!(text("1. not a list", Context::Flow), "1\\. not a list");
        assert_eq!(text("one\ntwo", Context::Cell), "one two");
        assert_eq!(text("one\n- two", Context::Flow), "one\\\n\\- two");
        assert_eq!(text("Q&A &amp;", Context::Flow), "Q\\&A \\&amp;");
        // A backslash escapes only punctuation: `\dt` needs no escape, `\*` and a trailing
        // one do.
        assert_eq!(text("psql \\dt", Context::Flow), "psql \\dt");
        assert_eq!(text("a\\*b", Context::Flow), "a\\\\\\*b");
        assert_eq!(text("a\\", Context::Flow), "a\\\\");
        assert_eq!(text("a\\\nb", Context::Flow), "a\\\\\\\nb");
    }

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("a`b", Context::Flow), "``a`b``");
        assert_eq!(code("`x`", Context::Flow), "`` `x` ``");
        assert_eq!(code("a|b", Context::Cell), "`a\\|b`");
        assert_eq!(code("a|b", Context::Flow), "`a|b`");
    }
}
