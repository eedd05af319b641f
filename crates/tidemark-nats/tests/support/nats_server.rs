//! Real `nats-server` processes for tests: each on its own loopback ports and store directory,
//! durable (`sync_interval: always`), killed with SIGKILL when dropped.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The nats-server binary: `$TIDEMARK_NATS_SERVER`, else installed by the project's script.
pub fn binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(find_binary).clone()
}

fn find_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TIDEMARK_NATS_SERVER") {
        return PathBuf::from(path);
    }
    // The repository root: the first ancestor of this package that holds the script.
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("scripts/install-nats-server"))
        .find(|script| script.exists())
        .expect("scripts/install-nats-server in an ancestor of this package");
    let out = Command::new(script)
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/install-nats-server runs");
    assert!(out.status.success(), "scripts/install-nats-server failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A free loopback port for a server to bind later. Taken below Linux's ephemeral range
/// (32768–60999), so outgoing connections of parallel tests cannot grab it between this check
/// and the server's bind; a per-process counter keeps parallel tests apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 1_000) as u16 * 12;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 12_000;
        let port = 20_000 + (base - 20_000 + offset) % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One nats-server process.
pub struct NatsServer {
    pub name: String,
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    fn write(dir: &Path, name: &str, port: u16, cluster: Option<(u16, &[u16])>) -> Self {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        let store = dir.join(name).join("store");
        // Durable by default; TIDEMARK_NATS_LAZY_FSYNC=1 measures nats-server's default instead.
        let sync = if std::env::var_os("TIDEMARK_NATS_LAZY_FSYNC").is_some() {
            ""
        } else {
            "  sync_interval: always\n"
        };
        let mut text = format!(
            "server_name: {name}\nlisten: 127.0.0.1:{port}\njetstream {{\n  store_dir: \"{}\"\n  max_file_store: 1GB\n  max_memory_store: 64MB\n{sync}}}\n",
            store.display()
        );
        if let Some((cluster_port, routes)) = cluster {
            let routes: Vec<String> = routes
                .iter()
                .map(|p| format!("    nats-route://127.0.0.1:{p}"))
                .collect();
            text.push_str(&format!(
                "cluster {{\n  name: tidemark-test\n  listen: 127.0.0.1:{cluster_port}\n  routes: [\n{}\n  ]\n}}\n",
                routes.join("\n")
            ));
        }
        let config = dir.join(name).join("nats.conf");
        std::fs::write(&config, text).unwrap();
        Self {
            name: name.to_owned(),
            port,
            config,
            log: dir.join(name).join("nats.log"),
            child: None,
        }
    }

    /// A single JetStream node under `dir`, started.
    pub fn single(dir: &Path) -> Self {
        let mut server = Self::write(dir, "n1", free_port(), None);
        server.start();
        server
    }

    /// A 3-node JetStream cluster under `dir`, started.
    pub fn cluster(dir: &Path) -> Vec<Self> {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes: Vec<Self> = (0..3)
            .map(|i| {
                Self::write(
                    dir,
                    &format!("n{}", i + 1),
                    free_port(),
                    Some((cluster_ports[i], &cluster_ports)),
                )
            })
            .collect();
        for node in &mut nodes {
            node.start();
        }
        nodes
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts, on the same store) and waits for the client port.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not listen; log: {}",
                self.name,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
