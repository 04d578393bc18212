//! Proxy load harness: `cargo bench --bench proxy`.
//!
//! In one run, alternating the targets round by round to cancel machine drift, `wrk` drives N
//! concurrent keep-alive clients for a bounded time against
//! (a) a static upstream (nginx answering a fixed JSON body, never the bottleneck),
//! (b) nginx as a bare reverse proxy in front of it (the cost of one proxy hop), and
//! (c) the firewall (the built release binary) in front of it, and
//! (d) a bare proxy made of the firewall's own HTTP stack, with none of its inspection: axum on the
//! firewall's `serve_workers` receives, the firewall's upstream client forwards (the floor of the
//! firewall's stack on this machine, so that c/d shows what the firewall's own work costs).
//! It prints requests/s, p50 and p99 per target (medians over the rounds), each target's
//! throughput and CPU per request over nginx's, and for the proxies the CPU time their process
//! spent per request (user + system, from `/proc/<pid>/stat`): on a machine whose cores are shared
//! by the load generator, the upstream and the proxy, CPU per request is the steadier measure of
//! what a proxy costs.
//!
//! The static upstream and the nginx proxy are two nginx instances, so that each proxy's CPU is
//! its own.
//!
//! Needs `nginx` and `wrk`; when missing they are installed from Debian's packages (`apt-get`,
//! as root). Knobs: `PROXY_BENCH_CONNECTIONS` (default 32), `PROXY_BENCH_SECONDS` (per run,
//! default 5), `PROXY_BENCH_ROUNDS` (default 5: throughput on a shared VM swings by ±10% between
//! runs). Traffic goes to loopback only.
//!
//! Optional targets and modes, each off unless its variable is set (docs/PERFORMANCE.md, "Which
//! engine could carry the hop", has the commands and the figures):
//! - `PROXY_BENCH_ENGINES=<directory>` adds the candidate engines built from the separate package
//!   `benches/engines/` (never built by the firewall's build or CI: `cargo build --release
//!   --locked --manifest-path benches/engines/Cargo.toml`, then the directory of its binaries,
//!   e.g. `benches/engines/target/release`): (e) Pingora, (f) monoio on io_uring. An engine that
//!   is missing or exits at start (io_uring refused) is skipped with its error in the report.
//! - `PROXY_BENCH_VARIANTS=on` adds (g) hyper's `service_fn` without axum and (h0–h5) the
//!   firewall's stack rebuilt in this bench with one hyper or worker knob changed at a time
//!   (`benches/proxy/stack.rs`).
//! - `PROXY_BENCH_OPEN_LOOP=on` then drives every target at 50% and 80% of nginx's measured
//!   throughput with `oha -q` (latency counted from when each request was due) and reports p99;
//!   needs `oha` (`cargo install --locked --no-default-features --features native-tls oha`).
//! - `PROXY_BENCH_PROFILE=on` then profiles each proxy under load with `perf record -e
//!   cpu-clock` and prints its top symbols; needs `perf` (Debian's `linux-perf`).
//! - `PROXY_BENCH_BASELINE=<binary>` adds (c0) another build of the firewall (an earlier commit's
//!   `target/release/graphql-firewall`) with the same settings, and prints c/c0: a change on the
//!   request path measured before and after in one run.
//! - `PROXY_BENCH_SERVE=<target>,<port>,<upstream port>` only serves one in-process stack (d, g,
//!   h0–h5) until killed, for `benches/engines/callgrind.sh` (instructions per request, which the
//!   machine's load does not move); `PROXY_BENCH_WORKERS` sets their threads.
//! - `PROXY_BENCH_STATE=on` adds two targets with a request rate and a cost budget switched on
//!   (never exhausted): (s1) budgets in the firewall's memory, (s2) the same budgets on Redis
//!   (`STATE=redis`, a `redis-server` started on a free port), and prints s2/s1 and the Redis
//!   round trips per request. Needs `redis-server` for that.

#[path = "proxy/engines.rs"]
mod engines;
#[path = "proxy/open_loop.rs"]
mod open_loop;
#[path = "proxy/profile.rs"]
mod profile;
#[path = "proxy/stack.rs"]
mod stack;

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FIREWALL: &str = env!("CARGO_BIN_EXE_graphql-firewall");

// The bare proxy (d) runs in this process: same allocator as the firewall binary, so that c/d
// compares the work done, not the allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the static upstream answers to everything.
const UPSTREAM_BODY: &str = r#"{"data":{"users":[{"id":"u0","name":"Ada","posts":[{"title":"Post 0 by Ada"},{"title":"Post 1 by Ada"}]},{"id":"u1","name":"Grace","posts":[{"title":"Post 3 by Grace"}]}]}}"#;

/// The request every client sends: a realistic operation with variables.
const REQUEST_BODY: &str = r#"{"query":"query Feed($first: Int!) { users(first: $first) { id name email posts(first: 2) { id title comments(first: 3) { text author { name } } } friends(first: 3) { id name } } }","operationName":"Feed","variables":{"first":5}}"#;

struct Target {
    name: &'static str,
    url: String,
    /// The processes whose CPU time is the proxy's (none for the upstream itself).
    processes: Vec<u32>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time (user + system) of the target's processes per request, in microseconds.
    cpu_us_per_request: f64,
    /// CPU time of the static upstream's workers per request, in microseconds.
    upstream_cpu_us_per_request: f64,
    /// Share of the machine's CPU time left idle during the run, in percent.
    idle_percent: f64,
    /// Requests completed in the run.
    requests: f64,
}

/// Stops what the bench started: child processes, and the nginx instances by their prefixes.
struct Guard(Vec<Child>, Vec<PathBuf>);

impl Drop for Guard {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
        for prefix in &self.1 {
            let _ = Command::new("nginx")
                .args([
                    "-p",
                    &prefix.to_string_lossy(),
                    "-c",
                    "nginx.conf",
                    "-s",
                    "stop",
                ])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful: only run when benched.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if let Ok(spec) = std::env::var("PROXY_BENCH_SERVE") {
        stack::serve_alone(&spec);
    }
    let connections = env_number("PROXY_BENCH_CONNECTIONS", 32);
    let seconds = env_number("PROXY_BENCH_SECONDS", 5);
    let rounds = env_number("PROXY_BENCH_ROUNDS", 5);
    ensure_tools();

    let work = std::env::temp_dir().join(format!("gfw-proxy-bench-{}", std::process::id()));
    let static_port = free_port();
    let nginx_proxy_port = free_port();
    let firewall_port = free_port();
    let mut guard = Guard(Vec::new(), Vec::new());
    let upstream_workers = start_nginx(
        &work.join("static"),
        &format!(
            r#"server {{
        listen 127.0.0.1:{static_port};
        location / {{
            default_type application/json;
            return 200 '{UPSTREAM_BODY}';
        }}
    }}"#
        ),
        &mut guard,
    );
    let proxy_nginx = start_nginx(
        &work.join("proxy"),
        &format!(
            r#"upstream static_upstream {{
        server 127.0.0.1:{static_port};
        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{nginx_proxy_port};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_pass http://static_upstream;
        }}
    }}"#
        ),
        &mut guard,
    );

    let firewall = start_firewall(static_port, firewall_port, &[]);
    let firewall_pid = firewall.id();
    guard.0.push(firewall);
    for port in [static_port, nginx_proxy_port, firewall_port] {
        wait_for_port(port);
    }

    let script = work.join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = [[{REQUEST_BODY}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )
    .expect("lua script");

    let bare_port = stack::spawn_bare(static_port, 0);
    let mut targets = vec![
        Target {
            name: "a: static upstream",
            url: format!("http://127.0.0.1:{static_port}/graphql"),
            processes: Vec::new(),
        },
        Target {
            name: "b: nginx proxy",
            url: format!("http://127.0.0.1:{nginx_proxy_port}/graphql"),
            processes: proxy_nginx,
        },
        Target {
            name: "c: graphql-firewall",
            url: format!("http://127.0.0.1:{firewall_port}/graphql"),
            processes: vec![firewall_pid],
        },
        Target {
            name: "d: bare stack",
            url: format!("http://127.0.0.1:{bare_port}/graphql"),
            processes: vec![std::process::id()],
        },
    ];
    let baseline = std::env::var_os("PROXY_BENCH_BASELINE").map(|binary| {
        let port = free_port();
        let child = start_binary(Path::new(&binary), static_port, port, &[]);
        targets.push(Target {
            name: "c0: firewall, baseline",
            url: format!("http://127.0.0.1:{port}/graphql"),
            processes: vec![child.id()],
        });
        guard.0.push(child);
        wait_for_port(port);
        targets.len() - 1
    });
    let mut skipped = Vec::new();
    if let Some(dir) = std::env::var_os("PROXY_BENCH_ENGINES") {
        let dir = PathBuf::from(dir);
        targets.extend(engines::start(
            &dir,
            static_port,
            &work,
            &mut guard,
            &mut skipped,
        ));
    }
    if switched_on("PROXY_BENCH_VARIANTS") {
        for (name, knobs) in stack::VARIANTS {
            let port = stack::spawn_variant(static_port, knobs, 0);
            wait_for_port(port);
            targets.push(Target {
                name,
                url: format!("http://127.0.0.1:{port}/graphql"),
                processes: vec![std::process::id()],
            });
        }
    }
    // Last: their report reads them from the end.
    let redis = switched_on("PROXY_BENCH_STATE")
        .then(|| add_state_targets(&mut targets, static_port, &work, &mut guard));
    // Sanity: every proxy really proxies (a 4xx/5xx at full speed would measure nothing).
    for target in &targets[2..] {
        check_answers(&target.url, &script);
    }

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    for round in 0..rounds {
        for offset in 0..targets.len() {
            let index = (round + offset) % targets.len();
            let sample = run_wrk(
                &targets[index],
                &upstream_workers,
                &script,
                connections,
                seconds,
            );
            samples[index].push(sample);
        }
    }
    let redis_round_trips = redis.map(redis_round_trips);
    let medians: Vec<Sample> = samples.iter().map(|s| median(s)).collect();

    let mut report = String::new();
    let _ = writeln!(
        report,
        "\nproxy bench: {connections} keep-alive connections, {seconds}s per run, {rounds} rounds (medians), wrk -t1, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        report,
        "{:<22} {:>10} {:>8} {:>8} {:>16} {:>19} {:>7} {:>8} {:>8}",
        "target",
        "req/s",
        "p50 ms",
        "p99 ms",
        "proxy CPU µs/req",
        "upstream CPU µs/req",
        "idle %",
        "÷ nginx",
        "CPU ÷ b"
    );
    let nginx = medians[1];
    for (target, m) in targets.iter().zip(&medians) {
        let _ = writeln!(
            report,
            "{:<22} {:>10.0} {:>8.3} {:>8.3} {:>16.1} {:>19.1} {:>7.1} {:>8.2} {:>8.2}",
            target.name,
            m.requests_per_second,
            m.p50_ms,
            m.p99_ms,
            m.cpu_us_per_request,
            m.upstream_cpu_us_per_request,
            m.idle_percent,
            m.requests_per_second / nginx.requests_per_second,
            m.cpu_us_per_request / nginx.cpu_us_per_request,
        );
    }
    for line in &skipped {
        let _ = writeln!(report, "{line}");
    }
    if let Some(index) = baseline {
        let (now, before) = (medians[2], medians[index]);
        let _ = writeln!(
            report,
            "this build against the baseline: throughput c/c0 = {:.2}, CPU per request c/c0 = {:.2}, p50 {:.3} vs {:.3} ms, p99 {:.3} vs {:.3} ms",
            now.requests_per_second / before.requests_per_second,
            now.cpu_us_per_request / before.cpu_us_per_request,
            now.p50_ms,
            before.p50_ms,
            now.p99_ms,
            before.p99_ms,
        );
    }
    let (a, b, c, d) = (medians[0], medians[1], medians[2], medians[3]);
    let _ = writeln!(
        report,
        "throughput c/b = {:.2}, c/a = {:.2}, d/b = {:.2}, c/d = {:.2}; p50 added over nginx = {:.3} ms, over direct = {:.3} ms",
        c.requests_per_second / b.requests_per_second,
        c.requests_per_second / a.requests_per_second,
        d.requests_per_second / b.requests_per_second,
        c.requests_per_second / d.requests_per_second,
        c.p50_ms - b.p50_ms,
        c.p50_ms - a.p50_ms,
    );
    let _ = writeln!(
        report,
        "proxy CPU per request: c/b = {:.2}, d/b = {:.2}, c/d = {:.2}",
        c.cpu_us_per_request / b.cpu_us_per_request,
        d.cpu_us_per_request / b.cpu_us_per_request,
        c.cpu_us_per_request / d.cpu_us_per_request,
    );
    if let (Some(round_trips), [.., e, f]) = (redis_round_trips, medians.as_slice()) {
        let requests: f64 = samples[samples.len() - 1].iter().map(|s| s.requests).sum();
        let _ = writeln!(
            report,
            "budgets on Redis vs in memory: throughput s2/s1 = {:.2}, p50 {:.3} vs {:.3} ms, p99 {:.3} vs {:.3} ms, proxy CPU s2/s1 = {:.2}; Redis round trips per request (s2) = {:.2}",
            f.requests_per_second / e.requests_per_second,
            f.p50_ms,
            e.p50_ms,
            f.p99_ms,
            e.p99_ms,
            f.cpu_us_per_request / e.cpu_us_per_request,
            round_trips as f64 / requests,
        );
    }
    print!("{report}");
    if switched_on("PROXY_BENCH_OPEN_LOOP") {
        let open = open_loop::measure(
            &targets,
            1,
            nginx.requests_per_second,
            connections,
            seconds,
            rounds,
        );
        print!("{open}");
    }
    if switched_on("PROXY_BENCH_PROFILE") {
        for target in targets.iter().filter(|t| !t.processes.is_empty()) {
            print!(
                "{}",
                profile::profile(target, &script, connections, seconds, &work)
            );
        }
    }
    drop(guard);
    let _ = std::fs::remove_dir_all(&work);
}

/// The release binary serving on `port` in front of the static upstream, with `extra` variables.
fn start_firewall(static_port: u16, port: u16, extra: &[(&str, String)]) -> Child {
    start_binary(Path::new(FIREWALL), static_port, port, extra)
}

/// `binary serve` on `port` in front of the static upstream.
fn start_binary(binary: &Path, static_port: u16, port: u16, extra: &[(&str, String)]) -> Child {
    Command::new(binary)
        .arg("serve")
        .env_clear()
        .env(
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            format!("http://127.0.0.1:{static_port}/graphql"),
        )
        .env("GRAPHQL_FIREWALL_LISTEN", format!("127.0.0.1:{port}"))
        .env("GRAPHQL_FIREWALL_METRICS_LISTEN", "off")
        // The access log at info would measure the terminal, not the firewall.
        .env("GRAPHQL_FIREWALL_LOG", "warn")
        .envs(extra.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::null())
        .spawn()
        .expect("firewall starts")
}

/// Adds (s1) the firewall with budgets in memory and (s2) with the same budgets on a Redis started
/// here; returns Redis's port.
fn add_state_targets(
    targets: &mut Vec<Target>,
    static_port: u16,
    work: &Path,
    guard: &mut Guard,
) -> u16 {
    let redis_port = free_port();
    let dir = work.join("redis");
    std::fs::create_dir_all(&dir).expect("redis directory");
    let redis = Command::new("redis-server")
        .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server starts (PROXY_BENCH_STATE=on needs it on PATH)");
    guard.0.push(redis);
    wait_for_port(redis_port);
    // Budgets far above what the bench can send: every request is checked, none refused.
    let budgets = [
        ("GRAPHQL_FIREWALL_RATE_LIMIT", "1000000/s".to_owned()),
        ("GRAPHQL_FIREWALL_COST_BUDGET", "1000000000/s".to_owned()),
    ];
    let memory_port = free_port();
    let memory = start_firewall(static_port, memory_port, &budgets);
    let on_redis_port = free_port();
    let mut shared = budgets.to_vec();
    shared.push(("GRAPHQL_FIREWALL_STATE", "redis".to_owned()));
    shared.push((
        "GRAPHQL_FIREWALL_REDIS_URL",
        format!("redis://127.0.0.1:{redis_port}"),
    ));
    shared.push(("GRAPHQL_FIREWALL_REDIS_REQUIRED_TO_START", "on".to_owned()));
    let on_redis = start_firewall(static_port, on_redis_port, &shared);
    targets.push(Target {
        name: "s1: budgets in memory",
        url: format!("http://127.0.0.1:{memory_port}/graphql"),
        processes: vec![memory.id()],
    });
    targets.push(Target {
        name: "s2: budgets on Redis",
        url: format!("http://127.0.0.1:{on_redis_port}/graphql"),
        processes: vec![on_redis.id()],
    });
    guard.0.push(memory);
    guard.0.push(on_redis);
    wait_for_port(memory_port);
    wait_for_port(on_redis_port);
    redis_port
}

/// Script calls Redis has served since it started (`INFO commandstats`): the round trips.
fn redis_round_trips(port: u16) -> u64 {
    let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|client| client.get_connection())
        .expect("connects to the bench's Redis");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut connection)
        .expect("INFO commandstats");
    // The commands a script runs (TIME, GET, SET) are counted too; the scripts' own calls are
    // the round trips (the bench's settings use nothing else).
    info.lines()
        .filter_map(|line| {
            let (command, stats) = line.split_once(':')?;
            matches!(command, "cmdstat_evalsha" | "cmdstat_eval").then_some(stats)
        })
        .filter_map(|stats| {
            stats
                .split(',')
                .find_map(|stat| stat.strip_prefix("calls="))
                .and_then(|calls| calls.parse::<u64>().ok())
        })
        .sum()
}

/// Starts an nginx instance under `prefix` with `servers` in its `http` block; returns the pids of
/// its workers (where the requests are served: one per CPU with `worker_processes auto`).
fn start_nginx(prefix: &Path, servers: &str, guard: &mut Guard) -> Vec<u32> {
    std::fs::create_dir_all(prefix.join("logs")).expect("nginx prefix");
    let dir = prefix.display();
    let conf = format!(
        r#"daemon on;
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    {servers}
}}
"#
    );
    std::fs::write(prefix.join("nginx.conf"), conf).expect("nginx.conf");
    // The daemon keeps the inherited stderr for notices; its errors go to logs/error.log.
    let status = Command::new("nginx")
        .args(["-p", &prefix.to_string_lossy(), "-c", "nginx.conf"])
        .stderr(Stdio::null())
        .status()
        .expect("nginx starts");
    assert!(
        status.success(),
        "nginx failed to start (see {dir}/logs/error.log)"
    );
    guard.1.push(prefix.to_owned());
    let expected = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let master = std::fs::read_to_string(prefix.join("nginx.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        if let Some(master) = master {
            let workers = children(master);
            if workers.len() >= expected {
                return workers;
            }
        }
        assert!(Instant::now() < deadline, "nginx workers never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pids whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat_fields(&stat).get(1).and_then(|f| f.parse().ok()))
                == Some(parent)
        })
        .collect()
}

/// The fields of a `/proc/*/stat` line after the command name (which may contain spaces):
/// index 0 is the state, 1 the parent pid, 11 and 12 user and system time in clock ticks.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map_or_else(Vec::new, |(_, rest)| rest.split_whitespace().collect())
}

/// User + system CPU time of every thread of `processes`, in seconds.
fn cpu_seconds(processes: &[u32]) -> f64 {
    let ticks_per_second = clock_ticks_per_second();
    let mut ticks = 0u64;
    for pid in processes {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.filter_map(Result::ok) {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let fields = stat_fields(&stat);
            for index in [11, 12] {
                ticks += fields
                    .get(index)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    ticks as f64 / ticks_per_second
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A mode switched on with `=on`.
fn switched_on(name: &str) -> bool {
    std::env::var(name).as_deref() == Ok("on")
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ensure_tools() {
    let missing = ["nginx", "wrk"].into_iter().any(|tool| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
    });
    if missing {
        eprintln!("installing nginx-light and wrk from Debian's packages");
        let ok = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "nginx and wrk are needed: apt-get install nginx-light wrk"
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check_answers(url: &str, script: &Path) {
    let output = Command::new("wrk")
        .args(["-t1", "-c1", "-d1s", "-s", &script.to_string_lossy(), url])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "{url} did not answer 2xx during the sanity run:\n{text}"
    );
}

fn run_wrk(
    target: &Target,
    upstream: &[u32],
    script: &Path,
    connections: usize,
    seconds: usize,
) -> Sample {
    let url = &target.url;
    let cpu_before = cpu_seconds(&target.processes);
    let upstream_before = cpu_seconds(upstream);
    let machine_before = machine_ticks();
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
            &script.to_string_lossy(),
            url,
        ])
        .output()
        .expect("wrk runs");
    let cpu = cpu_seconds(&target.processes) - cpu_before;
    let upstream_cpu = cpu_seconds(upstream) - upstream_before;
    let (idle_after, total_after) = machine_ticks();
    let (idle_before, total_before) = machine_before;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "non-2xx answers from {url}:\n{text}"
    );
    let mut sample = Sample::default();
    let mut requests = 0.0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some(count), Some("requests")) => requests = count.parse().unwrap_or(0.0),
            (Some("Requests/sec:"), Some(value)) => {
                sample.requests_per_second = value.parse().unwrap_or(0.0)
            }
            (Some("50%"), Some(value)) => sample.p50_ms = to_ms(value),
            (Some("99%"), Some(value)) => sample.p99_ms = to_ms(value),
            _ => {}
        }
    }
    assert!(
        sample.requests_per_second > 0.0 && requests > 0.0,
        "no result from wrk for {url}:\n{text}"
    );
    sample.cpu_us_per_request = if target.processes.is_empty() {
        f64::NAN
    } else {
        cpu * 1e6 / requests
    };
    sample.upstream_cpu_us_per_request = upstream_cpu * 1e6 / requests;
    sample.requests = requests;
    sample.idle_percent =
        100.0 * (idle_after - idle_before) as f64 / (total_after - total_before).max(1) as f64;
    sample
}

/// The machine's idle and total CPU time so far, in clock ticks (the `cpu` line of `/proc/stat`;
/// idle includes I/O wait).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    let total = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (idle, total)
}

fn to_ms(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        _ => f64::NAN,
    }
}

/// The median of one measure over the rounds (`NaN` without rounds).
fn median_of<T>(rounds: &[T], measure: fn(&T) -> f64) -> f64 {
    let mut values: Vec<f64> = rounds.iter().map(measure).collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| median_of(samples, f);
    Sample {
        requests_per_second: pick(|s| s.requests_per_second),
        p50_ms: pick(|s| s.p50_ms),
        p99_ms: pick(|s| s.p99_ms),
        cpu_us_per_request: pick(|s| s.cpu_us_per_request),
        upstream_cpu_us_per_request: pick(|s| s.upstream_cpu_us_per_request),
        idle_percent: pick(|s| s.idle_percent),
        requests: pick(|s| s.requests),
    }
}
