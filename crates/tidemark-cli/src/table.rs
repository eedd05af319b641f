//! Plain-text tables for terminals: left-aligned columns, two spaces apart; long text wraps
//! onto continuation lines so a table fits the width it is printed at.

use textwrap::core::display_width;

/// Width of output that is not a terminal (a file, a pipe), unless `COLUMNS` says otherwise.
pub const FALLBACK_WIDTH: usize = 120;

/// The narrowest a wrapped column gets, however wide the other columns are.
const MIN_WRAPPED_WIDTH: usize = 20;

/// How wide printed tables may be: `COLUMNS` when set, else the terminal's width when standard
/// output is one, else [`FALLBACK_WIDTH`]. `--json` prints every text whole.
pub fn output_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return columns;
    }
    console::Term::stdout()
        .size_checked()
        .map_or(FALLBACK_WIDTH, |(_rows, columns)| usize::from(columns))
}

/// Renders rows under a header, each column as wide as its widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    render_within(header, rows, &[], usize::MAX)
}

/// Renders rows under a header within [`output_width`]: the `wrap` columns (free text: titles,
/// notes, effects) wrap onto continuation lines when the table would be wider.
pub fn render_fitted(header: &[&str], rows: &[Vec<String>], wrap: &[usize]) -> String {
    render_within(header, rows, wrap, output_width())
}

/// Renders rows under a header, the `wrap` columns wrapped so that lines stay within `width`
/// as far as the other columns and the longest word of each wrapped column allow.
pub fn render_within(
    header: &[&str],
    rows: &[Vec<String>],
    wrap: &[usize],
    width: usize,
) -> String {
    let natural = |cell: &str| cell.lines().map(display_width).max().unwrap_or(0);
    let mut widths: Vec<usize> = header.iter().map(|h| display_width(h)).collect();
    let mut longest_word: Vec<usize> = widths.clone();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(natural(cell));
            let word = cell
                .split_whitespace()
                .map(display_width)
                .max()
                .unwrap_or(0);
            longest_word[i] = longest_word[i].max(word);
        }
    }
    fit(&mut widths, &longest_word, wrap, width);
    // Each row's cells as lines: wrapped ones at their column's width.
    let cells: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, cell)| {
                    if wrap.contains(&i) && natural(cell) > widths[i] {
                        textwrap::wrap(cell, wrap_options(widths[i]))
                            .into_iter()
                            .map(|line| line.into_owned())
                            .collect()
                    } else {
                        cell.lines().map(str::to_owned).collect()
                    }
                })
                .collect()
        })
        .collect();
    let mut out = String::new();
    let mut push_line = |cells: &[&str]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[i].saturating_sub(display_width(cell));
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_line(header);
    for row in &cells {
        let height = row.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for n in 0..height {
            let line: Vec<&str> = row
                .iter()
                .map(|lines| lines.get(n).map_or("", String::as_str))
                .collect();
            push_line(&line);
        }
    }
    out
}

/// Lines of at most `width` columns, broken between words only: a word longer than the line
/// (a check key, a URL) stays whole on a line of its own, and `pod:crashloop:dnd/dnd-backend` is
/// not split at its hyphens.
pub fn wrap_options(width: usize) -> textwrap::Options<'static> {
    textwrap::Options::new(width.max(1))
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
}

/// Narrows the `wrap` columns so the table fits `width`. A column is never narrower than its
/// longest word or [`MIN_WRAPPED_WIDTH`] (unless all of it is narrower), nor wider than its
/// widest cell; within those bounds the room left by the other columns is shared equally.
fn fit(widths: &mut [usize], longest_word: &[usize], wrap: &[usize], width: usize) {
    let gaps = 2 * widths.len().saturating_sub(1);
    let fixed: usize = widths
        .iter()
        .enumerate()
        .filter(|(i, _)| !wrap.contains(i))
        .map(|(_, w)| *w)
        .sum();
    let mut room = width.saturating_sub(fixed + gaps);
    if wrap.iter().map(|&i| widths[i]).sum::<usize>() <= room {
        return;
    }
    let least: Vec<usize> = (0..widths.len())
        .map(|i| longest_word[i].max(MIN_WRAPPED_WIDTH).min(widths[i]))
        .collect();
    let mut open: Vec<usize> = wrap.to_vec();
    while !open.is_empty() {
        let share = room / open.len();
        // A column that needs no more than its share keeps its width; one that cannot go
        // below its share gets its least width; then the others share what is left.
        let settled = open
            .iter()
            .position(|&i| widths[i] <= share)
            .or_else(|| open.iter().position(|&i| least[i] >= share));
        match settled {
            Some(at) => {
                let i = open.remove(at);
                widths[i] = widths[i].min(least[i].max(share));
                room = room.saturating_sub(widths[i]);
            }
            None => {
                for &i in &open {
                    widths[i] = share;
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(cells: &[&[&str]]) -> Vec<Vec<String>> {
        cells
            .iter()
            .map(|row| row.iter().map(|c| (*c).to_owned()).collect())
            .collect()
    }

    #[test]
    fn a_long_cell_wraps_within_the_width_and_the_columns_after_it_stay_aligned() {
        let long = "word ".repeat(60);
        let table = rows(&[&["1", long.trim_end(), "opened"], &["2", "short", "closed"]]);
        let text = render_within(&["SEQ", "EVENT", "EFFECT"], &table, &[1], 60);
        for line in text.lines() {
            assert!(display_width(line) <= 60, "{line:?} is wider than 60");
        }
        // Every word is there, and the column after the wrapped one starts at one place.
        assert_eq!(text.matches("word").count(), 60);
        let effect_at: Vec<usize> = text
            .lines()
            .filter_map(|l| l.find("opened").or_else(|| l.find("closed")))
            .collect();
        assert_eq!(effect_at.len(), 2);
        assert_eq!(effect_at[0], effect_at[1]);
        assert!(text.lines().count() > 4, "{text}");
        // Identifiers break between words, never at their hyphens or inside: a word longer
        // than the column widens it.
        let table = rows(&[&["opened pod:restarting:dnd/dnd-backend-7f9d4b8c6-xk2p9 and more"]]);
        let text = render_within(&["EFFECT"], &table, &[0], 25);
        assert!(
            text.contains("pod:restarting:dnd/dnd-backend-7f9d4b8c6-xk2p9"),
            "{text}"
        );
        let table = rows(&[&["merged auto-pw-prod-1 into inc-2026-03-02-dnd"]]);
        let text = render_within(&["EFFECT"], &table, &[0], 30);
        assert!(
            text.contains("auto-pw-prod-1") && text.contains("inc-2026-03-02-dnd"),
            "{text}"
        );
    }

    #[test]
    fn tables_that_fit_are_as_before_and_render_never_wraps() {
        let table = rows(&[&["1", "short", "opened"]]);
        assert_eq!(
            render_within(&["SEQ", "EVENT", "EFFECT"], &table, &[1], 80),
            render(&["SEQ", "EVENT", "EFFECT"], &table)
        );
        assert_eq!(render(&["A", "B"], &rows(&[&["x", "y"]])), "A  B\nx  y\n");
    }

    #[test]
    fn several_wrapped_columns_share_the_room_and_keep_a_readable_width() {
        let long = "alpha beta gamma delta ".repeat(10);
        let table = rows(&[&["k", long.trim_end(), long.trim_end()]]);
        let text = render_within(&["K", "A", "B"], &table, &[1, 2], 70);
        assert!(text.lines().all(|l| display_width(l) <= 70), "{text}");
        // Far too narrow: the wrapped columns keep their minimum instead of one letter a line.
        let text = render_within(&["K", "A", "B"], &table, &[1, 2], 10);
        assert!(text.lines().skip(1).all(|l| l.contains(' ')), "{text}");
        assert!(
            text.lines().nth(1).unwrap().len() >= MIN_WRAPPED_WIDTH,
            "{text}"
        );
    }
}
