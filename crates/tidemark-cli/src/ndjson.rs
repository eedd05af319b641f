//! Reading NDJSON event logs from files, line by line, with progress.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use tidemark_core::{Contract, DecodeError, Event, decode_ndjson_line_under};

use crate::{CliError, exit};

/// The longest line accepted: far above any real event, low enough to bound memory.
pub const MAX_LINE_BYTES: u64 = 16 << 20;

/// A progress bar over the bytes of a file, drawn on stderr only when it is a terminal.
pub fn byte_progress(total_bytes: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} · {per_sec} · eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Opens a log file, naming it in the error.
pub fn open(path: &Path) -> Result<(BufReader<File>, u64), CliError> {
    let file = File::open(path).map_err(|e| {
        CliError::new(
            exit::NO_INPUT,
            anyhow::anyhow!("cannot open {}: {e}", path.display()),
        )
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((BufReader::with_capacity(1 << 20, file), len))
}

/// Calls `each` with every non-blank line's number, bytes and decoded event (or its error), in
/// order, and reports bytes read to `progress`. `each` returns `false` to stop early. Lines are
/// judged by `contract`: new input (ingest, publish) or the records of a log (replay, corpus).
pub fn for_each_event(
    mut reader: impl BufRead,
    progress: &ProgressBar,
    contract: Contract,
    mut each: impl FnMut(u64, &[u8], Result<Event, DecodeError>) -> Result<bool, CliError>,
) -> Result<(), CliError> {
    let mut line = Vec::new();
    let mut line_number = 0u64;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| anyhow::anyhow!("reading line {}: {e}", line_number + 1))?;
        if read == 0 {
            return Ok(());
        }
        line_number += 1;
        if line.len() as u64 > MAX_LINE_BYTES {
            return Err(CliError::new(
                exit::DATA_ERROR,
                anyhow::anyhow!(
                    "line {line_number} is longer than {} MiB: one event per line is expected",
                    MAX_LINE_BYTES >> 20
                ),
            ));
        }
        progress.inc(read as u64);
        let decoded = match std::str::from_utf8(&line) {
            Ok(text) => match decode_ndjson_line_under(line_number, text, contract) {
                None => continue,
                Some(result) => result,
            },
            Err(_) => Err(DecodeError {
                line: Some(line_number),
                event_id: None,
                field: None,
                problem: tidemark_core::DecodeProblem::NotUtf8,
            }),
        };
        let raw = line.strip_suffix(b"\n").unwrap_or(&line);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if !each(line_number, raw, decoded)? {
            return Ok(());
        }
    }
}
