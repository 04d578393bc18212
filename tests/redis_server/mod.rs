//! A private `redis-server` for one test: started from `PATH` on a free loopback port, with no
//! persistence, stopped on drop. Tests never touch a Redis the machine already runs (6379).
//!
//! Without `redis-server` on `PATH`, [`RedisServer::start`] prints a skip notice and returns
//! `None`; with `CI=true` in the environment a missing `redis-server` is a failure instead, so CI
//! can never pass by skipping (`.ci/run` installs it).

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a fresh server may take to answer `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// Attempts at finding a free port (another process may take the one we picked).
const PORT_ATTEMPTS: usize = 5;

/// A running `redis-server`, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RedisServer {
    /// Starts a server, or returns `None` (after a notice on stderr) when `redis-server` is not
    /// installed. Panics when it is missing and `CI=true`, or when it does not come up.
    pub fn start() -> Option<Self> {
        let mut server = Self {
            child: None,
            port: 0,
            dir: tempfile::tempdir().expect("temporary directory for redis-server"),
        };
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            match spawn(server.port, &server.dir) {
                Spawned::Running(child) => server.child = Some(child),
                Spawned::Missing => {
                    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                        panic!(
                            "redis-server is not on PATH and CI=true: the Redis tests must run in CI \
                             (.ci/run installs redis-server)"
                        );
                    }
                    eprintln!(
                        "SKIPPED: redis-server is not on PATH, so this Redis state test did not run \
                         (install it, e.g. `apt-get install redis-server`)"
                    );
                    return None;
                }
            }
            match server.wait_until_ready() {
                Ok(()) => return Some(server),
                Err(failure) => {
                    last_failure = failure;
                    server.stop();
                }
            }
        }
        panic!("redis-server did not start on a free port: {last_failure}");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain synchronous connection, for setting up and inspecting from the test.
    pub fn admin(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("valid url")
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("admin connection to the test redis-server")
    }

    /// Kills the server (its data is gone: it persists nothing) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match spawn(self.port, &self.dir) {
                Spawned::Running(child) => self.child = Some(child),
                Spawned::Missing => panic!("redis-server vanished from PATH"),
            }
            match self.wait_until_ready() {
                Ok(()) => return,
                // The old socket may linger for a moment; try again until the deadline.
                Err(_) if Instant::now() < deadline => {
                    self.stop();
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(failure) => panic!("redis-server did not restart: {failure}"),
            }
        }
    }

    /// Polls `PING` until the server answers, it exits, or [`READY_WITHIN`] passes.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        let client = redis::Client::open(self.url()).map_err(|err| err.to_string())?;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("exited with {status}: {}", self.log_tail()));
            }
            // The port may have been taken by another test's server: only ours counts.
            let answered = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut connection| {
                    redis::cmd("INFO")
                        .arg("server")
                        .query::<String>(&mut connection)
                });
            if let Ok(info) = answered {
                let ours = self
                    .child
                    .as_ref()
                    .map(|child| format!("process_id:{}", child.id()));
                return match ours {
                    Some(pid) if info.lines().any(|line| line.trim() == pid) => Ok(()),
                    _ => Err(format!("port {} answered by another server", self.port)),
                };
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no PONG within {READY_WITHIN:?}: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

enum Spawned {
    Missing,
    Running(Child),
}

fn spawn(port: u16, dir: &TempDir) -> Spawned {
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .arg("--logfile")
        .arg(dir.path().join("redis.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => Spawned::Running(child),
        Err(err) if err.kind() == ErrorKind::NotFound => Spawned::Missing,
        Err(err) => panic!("redis-server could not be started: {err}"),
    }
}

/// A port that was free a moment ago (bind port 0, read it, release it): redis-server has no
/// `--port 0`. Another process may take it before redis-server binds; the caller retries.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
