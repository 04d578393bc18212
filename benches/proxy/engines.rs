//! (e) and (f): the candidate engines of `benches/engines/` (a package of its own, never built by
//! the firewall's build or CI), started from the directory `PROXY_BENCH_ENGINES` names.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Guard, Target, free_port};

/// The engines, by the binary's name in `benches/engines/`.
const ENGINES: [(&str, &str); 2] = [
    ("e: Pingora", "engine-pingora"),
    ("f: monoio io_uring", "engine-monoio"),
];

/// Starts every engine found in `dir` in front of the static upstream. An engine that is missing
/// or exits at start (io_uring refused by the kernel or the sandbox) is reported and skipped:
/// the report carries its error.
pub fn start(
    dir: &Path,
    static_port: u16,
    work: &Path,
    guard: &mut Guard,
    skipped: &mut Vec<String>,
) -> Vec<Target> {
    let mut targets = Vec::new();
    for (name, binary) in ENGINES {
        let path = dir.join(binary);
        if !path.is_file() {
            skipped.push(format!("{name}: skipped, no {}", path.display()));
            continue;
        }
        let port = free_port();
        let log = work.join(format!("{binary}.stderr"));
        let mut child = Command::new(&path)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--upstream", &format!("127.0.0.1:{static_port}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("engine log"))
            .spawn()
            .expect("engine starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        let exited = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break None;
            }
            assert!(Instant::now() < deadline, "{name} never listened on {port}");
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(status) = exited {
            let error = std::fs::read_to_string(&log).unwrap_or_default();
            skipped.push(format!(
                "{name}: skipped, exited at start ({status}): {}",
                error.trim()
            ));
            continue;
        }
        targets.push(Target {
            name,
            url: format!("http://127.0.0.1:{port}/graphql"),
            processes: vec![child.id()],
        });
        guard.0.push(child);
    }
    targets
}
