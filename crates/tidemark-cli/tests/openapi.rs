//! `/v1/openapi.json` through independent tools, against a running `tidemark serve` loaded with
//! a real log: `openapi-spec-validator` finds the document valid OpenAPI 3.1, and a client that
//! `openapi-python-client` generates from it calls every GET route and parses every answer into
//! the documented models (`tests/fixtures/openapi_client/drive.py`).
//!
//! The tools come from `scripts/install-openapi-tools` (`$TIDEMARK_OPENAPI_PYTHON`, which
//! `scripts/test` sets, else the script is run here).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// The Python with both tools: `$TIDEMARK_OPENAPI_PYTHON`, else the one
/// `scripts/install-openapi-tools` installs (a virtualenv under `.tools/`).
fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(find_python).clone()
}

fn find_python() -> PathBuf {
    support::installed_tool(
        "TIDEMARK_OPENAPI_PYTHON",
        "install-openapi-tools",
        "this test needs Python 3 with openapi-spec-validator and openapi-python-client from PyPI",
    )
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// A `tidemark serve` killed when the test ends, however it ends.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const WRITE_TOKEN: &str = "openapi-client-0123456789abcdef";

/// Serves the incident day's log, with a write token (the generated client authenticates as
/// the document says).
fn serve(dir: &Path) -> Server {
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("write {WRITE_TOKEN}\n")).unwrap();
    let db = dir.join("openapi.redb");
    let fixture = repo("crates/tidemark-cli/tests/fixtures/incident-day.ndjson");
    let (child, base) = support::spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        tokens.to_str().unwrap(),
        "--replay",
        fixture.to_str().unwrap(),
    ]);
    Server { child, base }
}

/// The document the server serves, saved in `dir`.
fn save_document(server: &Server, dir: &Path) -> PathBuf {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut response = agent
        .get(format!("{}/v1/openapi.json", server.base))
        .header("authorization", format!("Bearer {WRITE_TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let path = dir.join("openapi.json");
    std::fs::write(&path, response.body_mut().read_to_string().unwrap()).unwrap();
    path
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("python runs");
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn the_document_is_valid_openapi_to_an_independent_validator() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let document = save_document(&server, dir.path());
    let output = run(Command::new(python())
        .args(["-m", "openapi_spec_validator"])
        .arg(&document));
    assert!(
        output.status.success(),
        "openapi-spec-validator refuses /v1/openapi.json (its complaint is above)"
    );
}

#[test]
fn a_client_generated_from_the_document_reads_every_get_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let document = save_document(&server, dir.path());
    let client_parent = dir.path().join("generated");
    std::fs::create_dir(&client_parent).unwrap();
    let fixtures = repo("crates/tidemark-cli/tests/fixtures/openapi_client");
    // Any schema the generator cannot turn into code is a failure, not a warning.
    let output = run(Command::new(python())
        .args(["-m", "openapi_python_client", "generate", "--meta", "none"])
        .arg("--fail-on-warning")
        .arg("--path")
        .arg(&document)
        .arg("--config")
        .arg(fixtures.join("config.yaml"))
        .arg("--output-path")
        .arg(client_parent.join("tidemark_client")));
    assert!(
        output.status.success(),
        "openapi-python-client cannot generate a client from /v1/openapi.json (see above)"
    );
    let output = run(Command::new(python())
        .arg(fixtures.join("drive.py"))
        .arg(&client_parent)
        .arg("tidemark_client")
        .arg(&server.base)
        .arg(WRITE_TOKEN)
        .arg(&document));
    assert!(
        output.status.success(),
        "the generated client failed on some GET routes (listed above)"
    );
}
