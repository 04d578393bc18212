//! Open-loop latency (`PROXY_BENCH_OPEN_LOOP=on`): every target at fixed request rates (50% and
//! 80% of the nginx proxy's measured maximum), so that a slow answer does not slow the arrivals
//! down (wrk's closed loop does, and hides the tail). `oha` sends at the rate (`-q`) and counts
//! each latency from when its request was due (`--latency-correction`), not from when it left.
//! Needs `oha` on PATH: `cargo install --locked --no-default-features --features native-tls oha`.

use std::fmt::Write as _;
use std::process::Command;

use crate::{REQUEST_BODY, Target};

/// The shares of nginx's maximum throughput the targets are driven at.
pub const LOADS: [f64; 2] = [0.5, 0.8];

/// One run of one target at one rate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Point {
    /// Requests per second actually completed (below the rate when the target cannot keep up).
    pub achieved: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Share of requests answered 2xx, in percent.
    pub success_percent: f64,
}

/// Drives `target` at `rate` requests per second for `seconds`.
pub fn run(target: &Target, rate: f64, connections: usize, seconds: usize) -> Point {
    let output = Command::new("oha")
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "--latency-correction",
        ])
        .args(["-z", &format!("{seconds}s")])
        .args(["-c", &connections.to_string()])
        .args(["-q", &format!("{rate:.0}")])
        .args(["-m", "POST", "-H", "Content-Type: application/json"])
        .args(["-d", REQUEST_BODY])
        .arg(&target.url)
        .output()
        .expect("oha runs (PROXY_BENCH_OPEN_LOOP=on needs `oha` on PATH)");
    let text = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!(
            "oha gave no JSON for {}: {text}{}",
            target.url,
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let number = |path: &str| json.pointer(path).and_then(serde_json::Value::as_f64);
    let statuses = json
        .pointer("/statusCodeDistribution")
        .and_then(serde_json::Value::as_object);
    let total: f64 = statuses.map_or(0.0, |s| s.values().filter_map(|v| v.as_f64()).sum());
    let ok: f64 = statuses.map_or(0.0, |s| {
        s.iter()
            .filter(|(code, _)| code.starts_with('2'))
            .filter_map(|(_, v)| v.as_f64())
            .sum()
    });
    Point {
        achieved: number("/summary/requestsPerSec").unwrap_or(f64::NAN),
        p50_ms: number("/metrics/latency_ms/p50").unwrap_or(f64::NAN),
        p99_ms: number("/metrics/latency_ms/p99").unwrap_or(f64::NAN),
        success_percent: if total > 0.0 { 100.0 * ok / total } else { 0.0 },
    }
}

/// The median of each measure over the rounds.
pub fn median(points: &[Point]) -> Point {
    let pick = |f: fn(&Point) -> f64| super::median_of(points, f);
    Point {
        achieved: pick(|p| p.achieved),
        p50_ms: pick(|p| p.p50_ms),
        p99_ms: pick(|p| p.p99_ms),
        success_percent: pick(|p| p.success_percent),
    }
}

/// Runs every target at every load, alternating the targets round by round, and reports the
/// medians with each target's p99 over nginx's at the same rate.
pub fn measure(
    targets: &[Target],
    nginx_index: usize,
    nginx_max: f64,
    connections: usize,
    seconds: usize,
    rounds: usize,
) -> String {
    let mut report = String::new();
    let _ = writeln!(
        report,
        "\nopen loop (oha -q, latency corrected), {connections} connections, {seconds}s per run, {rounds} rounds (medians); rates from nginx's {nginx_max:.0} req/s"
    );
    let _ = writeln!(
        report,
        "{:<22} {:>6} {:>9} {:>10} {:>8} {:>8} {:>9} {:>6}",
        "target", "load", "rate", "achieved", "p50 ms", "p99 ms", "p99/nginx", "2xx %"
    );
    for load in LOADS {
        let rate = load * nginx_max;
        let mut points: Vec<Vec<Point>> = vec![Vec::new(); targets.len()];
        for round in 0..rounds {
            for offset in 0..targets.len() {
                let index = (round + offset) % targets.len();
                points[index].push(run(&targets[index], rate, connections, seconds));
            }
        }
        let medians: Vec<Point> = points.iter().map(|p| median(p)).collect();
        let nginx_p99 = medians[nginx_index].p99_ms;
        for (target, m) in targets.iter().zip(&medians) {
            let _ = writeln!(
                report,
                "{:<22} {:>5.0}% {:>9.0} {:>10.0} {:>8.3} {:>8.3} {:>9.2} {:>6.1}",
                target.name,
                load * 100.0,
                rate,
                m.achieved,
                m.p50_ms,
                m.p99_ms,
                m.p99_ms / nginx_p99,
                m.success_percent
            );
        }
    }
    report
}
