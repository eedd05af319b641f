//! Starting the real `tidemark` binary as a server and learning where it listens.
#![allow(dead_code)] // each test crate uses a part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `tidemark ARGS` (a `serve` command listening on port 0) and returns the child and its
/// base URL, read from the "... on http://ADDR" line it prints.
#[allow(dead_code)]
pub fn spawn_server(args: &[&str]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    command.args(args);
    spawn_command(command)
}

/// Runs a command that ends up as `tidemark serve` on port 0 (say, under `prlimit`) and returns
/// the child and its base URL.
pub fn spawn_command(mut command: Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tidemark starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("on http://") {
                let addr = line[at + 3..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server printed its address");
    (child, base)
}

/// A tool the project's own script installs: the path in `$env_var` when it is set (it must
/// exist), else the path `scripts/SCRIPT` prints once it has installed it. `needs` says what the
/// test needs, for the message when the script fails.
pub fn installed_tool(env_var: &str, script: &str, needs: &str) -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_var}={} does not exist: set it to the path scripts/{script} prints",
            path.display()
        );
        return path;
    }
    let script_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script);
    let out = Command::new(&script_path)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("scripts/{script} runs: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} failed ({needs}; see its output above), or set {env_var} to one that does"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}
