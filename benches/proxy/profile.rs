//! Where each proxy spends its CPU (`PROXY_BENCH_PROFILE=on`): one more wrk run per target under
//! `perf record -e cpu-clock` (a software clock: this VM has no hardware counters) of the target's
//! processes, summarised as the top symbols by share of its samples. Needs `perf` (Debian's
//! `linux-perf`). The in-process stacks (d, g, h) are profiled as the bench process: only the
//! target under load is busy.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Target;

/// Symbols shown per target.
const TOP: usize = 15;

/// Profiles `target` while wrk loads it for `seconds`; returns its summary.
pub fn profile(
    target: &Target,
    script: &Path,
    connections: usize,
    seconds: usize,
    work: &Path,
) -> String {
    let data = work.join("perf.data");
    let pids: Vec<String> = target.processes.iter().map(u32::to_string).collect();
    let mut perf = Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "999", "-o"])
        .arg(&data)
        .args(["-p", &pids.join(",")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("perf runs (PROXY_BENCH_PROFILE=on needs Debian's linux-perf)");
    // perf needs a moment to attach before the load starts.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(script)
        .arg(&target.url)
        .output();
    // SIGINT makes perf write its data and exit.
    let _ = Command::new("kill")
        .args(["-INT", &perf.id().to_string()])
        .status();
    let _ = perf.wait();
    let report = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "dso,sym",
            "-i",
        ])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .expect("perf report");
    let text = String::from_utf8_lossy(&report.stdout);
    let mut summary = format!(
        "\n{} (perf cpu-clock, share of its samples):\n",
        target.name
    );
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('%'))
        .take(TOP)
    {
        let _ = writeln!(summary, "  {}", line.trim());
    }
    // The kernel's share as a whole: on loopback, sending also runs the receiver's TCP input.
    let kernel: f64 = text
        .lines()
        .filter(|l| l.contains("[kernel"))
        .filter_map(|l| l.trim().split('%').next()?.parse::<f64>().ok())
        .sum();
    let _ = writeln!(summary, "  kernel total: {kernel:.1}%");
    let _ = std::fs::remove_file(&data);
    summary
}
