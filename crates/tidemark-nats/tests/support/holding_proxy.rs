//! A loopback TCP relay between one NATS client and a real nats-server that reproduces what CPU
//! load does to a fetch: from the client's first pull request (`$JS.API.CONSUMER.MSG.NEXT.`) it
//! holds back everything the server sends, until the client has given up on that fetch (its next
//! operation: while a fetch is open a follower sends nothing, so the next `PUB`, `HPUB`, `SUB` or
//! `UNSUB` comes after async-nats' own batch timer ended the fetch). The server has delivered the
//! batch by then; the client receives it only after it stopped reading it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Where the relay is in its one hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No pull request seen yet: everything flows.
    Waiting,
    /// A pull request went out: what the server sends is held back.
    Holding,
    /// The client gave up on that fetch: the held bytes were let through, everything flows.
    Released,
}

struct State {
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl State {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap()
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap() = phase;
        self.changed.notify_all();
    }
}

/// The relay; its threads end when either side closes.
pub struct HoldingProxy {
    pub port: u16,
    state: Arc<State>,
}

impl HoldingProxy {
    /// Relays connections on a new loopback port to the server at `server_port`.
    pub fn start(server_port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            phase: Mutex::new(Phase::Waiting),
            changed: Condvar::new(),
        });
        let relay_state = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                let (client_in, server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up_state = relay_state.clone();
                std::thread::spawn(move || client_to_server(client_in, server_out, &up_state));
                let down_state = relay_state.clone();
                std::thread::spawn(move || server_to_client(server, client, &down_state));
            }
        });
        Self { port, state }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// Waits until a fetch was held and given up by the client.
    pub async fn wait_released(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.phase() != Phase::Released {
            assert!(
                Instant::now() < deadline,
                "no fetch was held and dropped: {:?}",
                self.phase()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Forwards the client's bytes, watching them for the pull request to hold and the next
/// operation, which releases it. (The client sends little: the history is kept until then.)
fn client_to_server(mut from: TcpStream, mut to: TcpStream, state: &State) {
    let mut history: Vec<u8> = Vec::new();
    let mut held_from = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if state.phase() != Phase::Released {
            history.extend_from_slice(&chunk[..n]);
        }
        if state.phase() == Phase::Waiting
            && let Some(at) = find(&history, b"$JS.API.CONSUMER.MSG.NEXT.")
        {
            // Before the request reaches the server: nothing it answers can slip through.
            held_from = at;
            state.set(Phase::Holding);
        }
        if to.write_all(&chunk[..n]).is_err() {
            break;
        }
        if state.phase() == Phase::Holding && next_operation(&history[held_from..]) {
            state.set(Phase::Released);
            history = Vec::new();
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Does `after` hold an operation other than pings? It starts inside the held request's own
/// `PUB` line, so any operation found is a later one.
fn next_operation(after: &[u8]) -> bool {
    ["\r\nPUB ", "\r\nHPUB ", "\r\nSUB ", "\r\nUNSUB "]
        .iter()
        .any(|op| find(after, op.as_bytes()).is_some())
}

/// Forwards the server's bytes, holding each chunk while the relay holds.
fn server_to_client(mut from: TcpStream, mut to: TcpStream, state: &State) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut phase = state.phase.lock().unwrap();
            while *phase == Phase::Holding {
                phase = state.changed.wait(phase).unwrap();
            }
        }
        if to.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
