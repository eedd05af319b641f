//! `tidemark tail`: a server's live stream (`GET /v1/stream`) in a terminal, one line per
//! event and its effects under it (what the projections drew from it), like `kubectl get -w`; it reconnects and resumes by itself (the stream's ids are log
//! positions, so a resume neither skips nor repeats an event).

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use tidemark_core::Event;
use tidemark_core::changes::Change;
use tidemark_core::describe::one_line;

use crate::ops_cmds::{error_message, plain_http_base};
use crate::{CliError, exit};

/// Follow a server's events live.
#[derive(Args, Debug)]
#[command(
    long_about = "Follow a running server's events live (GET /v1/stream), one line per event: \
                  position, time, type, cluster, source and what it says; under it, indented, \
                  each effect it had (a finding opened or resolved, a clean count, a flap, an \
                  incident opened or linked), as `tidemark replay --step` says them \
                  (--no-effects: none). Without --from it \
                  starts with the next event stored. It reconnects by itself when the \
                  connection drops or the server cuts it off, and goes on after the last \
                  position it printed, so no event is missed or printed twice.",
    after_help = "Examples:\n  tidemark tail --server http://127.0.0.1:7070\n  \
                  tidemark tail --cluster prod-eu --type alert.fired\n  \
                  tidemark tail --incident INC-7 --from 1 --json | jq .event.type"
)]
pub struct TailArgs {
    /// The server (http://HOST:PORT).
    #[arg(
        long,
        env = "TIDEMARK_SERVER",
        default_value = "http://127.0.0.1:7070",
        value_name = "URL"
    )]
    pub server: String,
    /// Bearer token (the read scope), when the server has tokens.
    #[arg(
        long,
        env = "TIDEMARK_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Only this cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Only this event type (e.g. `alert.fired`).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Only events on this incident's timeline.
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    /// Only events that changed or named this finding.
    #[arg(long, value_name = "CHECK_KEY")]
    pub check_key: Option<String>,
    /// Start at this log position (1: the whole log) instead of at the next event stored.
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
    /// Print each event as a JSON line (`{seq, recorded_at, event}`) instead (with
    /// `--effects`, each of its effects as a JSON line after it).
    #[arg(long)]
    pub json: bool,
    /// Do not print each event's effects (what the projections drew from it).
    #[arg(long, conflicts_with = "effects")]
    pub no_effects: bool,
    /// With --json: print each effect as a JSON line (`{seq, what, subject, change}`) after
    /// its event (the text output prints them unless --no-effects).
    #[arg(long, requires = "json")]
    pub effects: bool,
    /// Stop after this many events (default: follow until interrupted).
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
}

/// One event frame's data.
#[derive(Deserialize)]
struct EventData {
    seq: u64,
    event: Event,
}

/// One change frame's data.
#[derive(Deserialize)]
struct ChangeData {
    seq: u64,
    what: String,
    subject: String,
    change: String,
}

/// The final frame's data.
#[derive(Deserialize)]
struct CutOff {
    reason: String,
    resume_after: u64,
}

/// How one connection ended.
enum Ended {
    /// `--max-events` printed.
    Done,
    /// Connection lost or cut off: reconnect (after this long).
    Reconnect(Duration),
}

/// `tidemark tail`.
pub fn run(args: &TailArgs) -> Result<(), CliError> {
    let base = plain_http_base(&args.server)?;
    if !base.starts_with("http://") {
        return Err(CliError::new(
            exit::USAGE,
            anyhow::anyhow!(
                "--server {base:?}: give the server's URL with its scheme, e.g. http://127.0.0.1:7070"
            ),
        ));
    }
    let mut url = format!("{base}/v1/stream?");
    {
        let mut query = form_urlencoded::Serializer::new(&mut url);
        for (name, value) in [
            ("cluster", &args.cluster),
            ("type", &args.event_type),
            ("incident", &args.incident),
            ("check_key", &args.check_key),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        if args.wants_effects() {
            query.append_pair("changes", "true");
        }
    }
    let mut tail = Tail {
        args,
        url,
        // None: from the server's checkpoint (the next event stored).
        last_id: args.from.map(|from| from.saturating_sub(1)),
        printed: 0,
        position: Vec::new(),
        failures: 0,
        out: std::io::stdout().lock(),
    };
    loop {
        match tail.connect()? {
            Ended::Done => return Ok(()),
            Ended::Reconnect(wait) => {
                // Backing off over failures in a row (a stream that was answered starts again).
                tail.failures += 1;
                let backoff = Duration::from_millis(250 * u64::from(tail.failures.min(40)));
                std::thread::sleep(if wait.is_zero() {
                    wait
                } else {
                    wait.max(backoff)
                });
            }
        }
    }
}

struct Tail<'a> {
    args: &'a TailArgs,
    url: String,
    /// The last id received: where a reconnect resumes.
    last_id: Option<u64>,
    printed: u64,
    /// The frames of the position being received (its event, then its changes), printed
    /// once its id arrives on its last frame: a connection lost inside a position resends it
    /// whole, so nothing is printed twice or in part.
    position: Vec<(String, String)>,
    /// Connections in a row that ended without being answered.
    failures: u32,
    out: std::io::StdoutLock<'static>,
}

/// How long a read of the stream may wait: the server sends a heartbeat every 15 s by default
/// (`--stream-heartbeat`), so this much silence means a connection that is gone without a word
/// (a host that died, a dropped NAT entry): reconnect.
const READ_TIMEOUT: Duration = Duration::from_secs(90);

impl Tail<'_> {
    /// One connection: prints its events until it ends.
    fn connect(&mut self) -> Result<Ended, CliError> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_read(Some(READ_TIMEOUT))
            .build()
            .new_agent();
        let mut url = self.url.clone();
        if let Some(after) = self.last_id {
            url.push_str(&format!("&after={after}"));
        }
        let mut request = agent.get(&url).header("accept", "text/event-stream");
        if let Some(token) = &self.args.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = match request.call() {
            Ok(response) => response,
            Err(error) => {
                eprintln!(
                    "tidemark tail: cannot reach {url}: {error} (is `tidemark serve` running there?); retrying"
                );
                return Ok(Ended::Reconnect(Duration::from_secs(1)));
            }
        };
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let message = error_message(response.into_body().read_to_string().unwrap_or_default());
            // Busy, or a proxy in front that cannot reach the server now (a restart): retry.
            if matches!(status, 502..=504) {
                let wait = retry_after.unwrap_or(2);
                eprintln!("tidemark tail: {status}: {message}; retrying in {wait}s");
                return Ok(Ended::Reconnect(Duration::from_secs(wait)));
            }
            let hint = match status {
                401 | 403 => " (pass a read token: --token or TIDEMARK_TOKEN)",
                _ => "",
            };
            return Err(CliError::new(
                exit::FAILURE,
                anyhow::anyhow!("{url} answered {status}: {message}{hint}"),
            ));
        }
        self.failures = 0;
        let reader = BufReader::new(response.into_body().into_reader());
        let mut frame = Frame::default();
        for line in reader.lines() {
            let Ok(line) = line else {
                break;
            };
            if !line.is_empty() {
                frame.field(&line);
                continue;
            }
            // A blank line ends a frame (an id alone moves the resume point).
            let id = frame.id.take();
            if let Some(id) = id {
                self.last_id = Some(id);
            }
            let name = frame.event.take();
            match name.as_deref() {
                Some(name @ ("event" | "change")) => {
                    if name == "event" {
                        // A position left without its id was cut by the network: the resume
                        // sends it again, whole.
                        self.position.clear();
                    }
                    self.position
                        .push((name.to_owned(), std::mem::take(&mut frame.data)));
                    if id.is_some() {
                        if !self.print_position()? {
                            return Ok(Ended::Done);
                        }
                        if self.args.max_events.is_some_and(|max| self.printed >= max) {
                            return Ok(Ended::Done);
                        }
                    }
                }
                Some("cut_off") => {
                    if let Ok(cut) = serde_json::from_str::<CutOff>(&frame.data) {
                        self.last_id = Some(cut.resume_after);
                        eprintln!(
                            "tidemark tail: the server ended the stream ({}); resuming after position {}",
                            cut.reason, cut.resume_after
                        );
                        let wait = if cut.reason == "slow_subscriber" {
                            Duration::ZERO
                        } else {
                            Duration::from_secs(1)
                        };
                        return Ok(Ended::Reconnect(wait));
                    }
                }
                Some("subscribed") if self.last_id.is_none() => {
                    // Started at the checkpoint: resume from there if cut before any event.
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&frame.data) {
                        self.last_id = v["after"].as_u64();
                    }
                }
                _ => {}
            }
            frame.data.clear();
        }
        self.position.clear();
        eprintln!("tidemark tail: the connection ended; reconnecting");
        Ok(Ended::Reconnect(Duration::from_secs(1)))
    }

    /// Prints the position received (its event, then its effects); `false` when stdout was
    /// closed (`| head`): the tail ends quietly.
    fn print_position(&mut self) -> Result<bool, CliError> {
        let frames = std::mem::take(&mut self.position);
        let mut written = Ok(());
        for (name, data) in &frames {
            if written.is_err() {
                break;
            }
            written = if name == "event" {
                self.printed += 1;
                self.event_line(data)
            } else {
                self.change_line(data)
            };
        }
        match written.and_then(|()| self.out.flush()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(CliError::new(
                exit::FAILURE,
                anyhow::anyhow!("writing stdout: {e}"),
            )),
        }
    }
}

impl Tail<'_> {
    fn event_line(&mut self, data: &str) -> std::io::Result<()> {
        if self.args.json {
            return writeln!(self.out, "{data}");
        }
        match serde_json::from_str::<EventData>(data) {
            Ok(EventData { seq, event }) => writeln!(
                self.out,
                "#{seq:<8} {}  {:<22} {:<16} [{}] {}",
                event.time,
                event.event_type().as_str(),
                event.cluster,
                event.source,
                one_line(&event)
            ),
            Err(error) => writeln!(self.out, "(an event this build cannot read: {error})"),
        }
    }

    /// An effect: as `tidemark replay --step` prints it, under its event; with --json, its
    /// frame's data as a line of its own.
    fn change_line(&mut self, data: &str) -> std::io::Result<()> {
        if self.args.json {
            return writeln!(self.out, "{data}");
        }
        match serde_json::from_str::<ChangeData>(data) {
            Ok(ChangeData {
                seq,
                what,
                subject,
                change,
            }) => match Change::of_named_part(&what, subject, change) {
                Some(change) => writeln!(self.out, "    {change}"),
                None => writeln!(self.out, "    (an effect of #{seq} this build cannot read)"),
            },
            Err(error) => writeln!(self.out, "    (an effect this build cannot read: {error})"),
        }
    }
}

impl TailArgs {
    /// Whether the stream is asked for each event's changes.
    fn wants_effects(&self) -> bool {
        if self.json {
            self.effects
        } else {
            !self.no_effects
        }
    }
}

/// The fields of one SSE frame being read.
#[derive(Default)]
struct Frame {
    id: Option<u64>,
    event: Option<String>,
    data: String,
}

impl Frame {
    fn field(&mut self, line: &str) {
        if line.starts_with(':') {
            return;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "id" => self.id = value.parse().ok(),
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
    }
}
