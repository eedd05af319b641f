//! A `tidemark serve` the bench programs drive: where it listens (read from its log) once it
//! answers `/readyz`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};

/// Waits until the server whose log is `log` printed its address and answers `/readyz` with
/// 200; answers its base URL (`http://ADDR`).
pub fn wait_ready(log: &Path, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    loop {
        ensure!(
            Instant::now() < deadline,
            "the server did not get ready within {timeout:?}: see {}",
            log.display()
        );
        let addr = std::fs::read_to_string(log)
            .ok()
            .and_then(|text| served_address(&text));
        if let Some(addr) = addr
            && let Ok(response) = agent.get(format!("{addr}/readyz")).call()
            && response.status().as_u16() == 200
        {
            return Ok(addr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The base URL in `tidemark serve`'s banner (`serving DB on http://ADDR (Ctrl-C to stop)`),
/// once the whole line is written (a line read while the server writes it may be cut short).
pub fn served_address(log: &str) -> Option<String> {
    log.lines()
        .filter(|line| line.ends_with("(Ctrl-C to stop)"))
        .find_map(|line| {
            let at = line.find(" on http://")?;
            Some(line[at + 4..].split_whitespace().next()?.to_owned())
        })
}
