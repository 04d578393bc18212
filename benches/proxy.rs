//! Proxy load harness: `cargo bench --bench proxy`.
//!
//! In one run, alternating the targets round by round to cancel machine drift, `wrk` drives N
//! concurrent keep-alive clients for a bounded time against
//! (a) a static upstream (nginx answering a fixed JSON body, never the bottleneck),
//! (b) nginx as a bare reverse proxy in front of it (the cost of one proxy hop), and
//! (c) the firewall (the built release binary) in front of it.
//! (c) the firewall (the built release binary) in front of it, and
//! (d) a bare axum + hyper proxy in front of it (no firewall logic: the floor of the firewall's own
//! HTTP stack on this machine, so that c/d shows what the firewall's work costs).
//! It prints requests/s, p50 and p99 per target (medians over the rounds) and the ratios.
//!
//! Needs `nginx` and `wrk`; when missing they are installed from Debian's packages (`apt-get`,
//! as root). Knobs: `PROXY_BENCH_CONNECTIONS` (default 32), `PROXY_BENCH_SECONDS` (per run,
//! default 5), `PROXY_BENCH_ROUNDS` (default 3). Traffic goes to loopback only.

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
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

struct Guard(Vec<Child>, PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("nginx")
            .args([
                "-p",
                &self.1.to_string_lossy(),
                "-c",
                "nginx.conf",
                "-s",
                "stop",
            ])
            .stderr(Stdio::null())
            .status();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful: only run when benched.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let connections = env_number("PROXY_BENCH_CONNECTIONS", 32);
    let seconds = env_number("PROXY_BENCH_SECONDS", 5);
    let rounds = env_number("PROXY_BENCH_ROUNDS", 3);
    ensure_tools();

    let work = std::env::temp_dir().join(format!("gfw-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(work.join("logs")).expect("bench work dir");
    let static_port = free_port();
    let nginx_proxy_port = free_port();
    let firewall_port = free_port();
    write_nginx_conf(&work, static_port, nginx_proxy_port);
    let status = Command::new("nginx")
        .args(["-p", &work.to_string_lossy(), "-c", "nginx.conf"])
        .status()
        .expect("nginx starts");
    assert!(
        status.success(),
        "nginx failed to start (see {})",
        work.display()
    );
    let mut guard = Guard(Vec::new(), work.clone());

    let firewall = Command::new(FIREWALL)
        .arg("serve")
        .env_clear()
        .env(
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            format!("http://127.0.0.1:{static_port}/graphql"),
        )
        .env(
            "GRAPHQL_FIREWALL_LISTEN",
            format!("127.0.0.1:{firewall_port}"),
        )
        // The access log at info would measure the terminal, not the firewall.
        .env("GRAPHQL_FIREWALL_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("firewall starts");
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

    let bare_port = spawn_bare_proxy(static_port);
    let targets = [
        Target {
            name: "a: static upstream",
            url: format!("http://127.0.0.1:{static_port}/graphql"),
        },
        Target {
            name: "b: nginx proxy",
            url: format!("http://127.0.0.1:{nginx_proxy_port}/graphql"),
        },
        Target {
            name: "c: graphql-firewall",
            url: format!("http://127.0.0.1:{firewall_port}/graphql"),
        },
        Target {
            name: "d: bare axum+hyper",
            url: format!("http://127.0.0.1:{bare_port}/graphql"),
        },
    ];
    // Sanity: the firewall really proxies (a 4xx/5xx at full speed would measure nothing).
    check_answers(&targets[2].url, &script);

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    for round in 0..rounds {
        for offset in 0..targets.len() {
            let index = (round + offset) % targets.len();
            let sample = run_wrk(&targets[index].url, &script, connections, seconds);
            samples[index].push(sample);
        }
    }
    let medians: Vec<Sample> = samples.iter().map(|s| median(s)).collect();

    let mut report = String::new();
    let _ = writeln!(
        report,
        "\nproxy bench: {connections} keep-alive connections, {seconds}s per run, {rounds} rounds (medians), wrk -t1"
    );
    let _ = writeln!(
        report,
        "{:<22} {:>12} {:>10} {:>10}",
        "target", "req/s", "p50 ms", "p99 ms"
    );
    for (target, m) in targets.iter().zip(&medians) {
        let _ = writeln!(
            report,
            "{:<22} {:>12.0} {:>10.3} {:>10.3}",
            target.name, m.requests_per_second, m.p50_ms, m.p99_ms
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
    print!("{report}");
    drop(guard);
    let _ = std::fs::remove_dir_all(&work);
}

/// Serves a bare proxy (axum receives, hyper-util's pooled client forwards, the answer goes back)
/// on a free port, on a runtime of this process; returns the port.
fn spawn_bare_proxy(upstream_port: u16) -> u16 {
    use axum::body::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;

    type Bare = Client<HttpConnector, Full<Bytes>>;
    async fn forward(
        axum::extract::State((client, uri)): axum::extract::State<(Bare, axum::http::Uri)>,
        body: Bytes,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let mut request = axum::http::Request::new(Full::new(body));
        *request.method_mut() = axum::http::Method::POST;
        *request.uri_mut() = uri;
        request.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        match client.request(request).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                match body.collect().await {
                    Ok(body) => (parts.status, body.to_bytes()).into_response(),
                    Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
                }
            }
            Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
        }
    }

    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = listener.local_addr().expect("bound").port();
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let uri: axum::http::Uri = format!("http://127.0.0.1:{upstream_port}/graphql")
        .parse()
        .expect("static URI");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("bench runtime");
        runtime.block_on(async move {
            let client: Bare =
                Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new());
            let app = axum::Router::new()
                .route("/graphql", axum::routing::post(forward))
                .with_state((client, uri));
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let _ = axum::serve(listener, app).await;
        });
    });
    port
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

fn write_nginx_conf(dir: &Path, static_port: u16, proxy_port: u16) {
    let conf = format!(
        r#"daemon on;
worker_processes 2;
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
    upstream static_upstream {{
        server 127.0.0.1:{static_port};
        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{static_port};
        location / {{
            default_type application/json;
            return 200 '{UPSTREAM_BODY}';
        }}
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_pass http://static_upstream;
        }}
    }}
}}
"#,
        dir = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
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
        "the firewall did not answer 2xx during the sanity run:\n{text}"
    );
}

fn run_wrk(url: &str, script: &Path, connections: usize, seconds: usize) -> Sample {
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
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "non-2xx answers from {url}:\n{text}"
    );
    let mut sample = Sample::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => {
                sample.requests_per_second = value.parse().unwrap_or(0.0)
            }
            (Some("50%"), Some(value)) => sample.p50_ms = to_ms(value),
            (Some("99%"), Some(value)) => sample.p99_ms = to_ms(value),
            _ => {}
        }
    }
    assert!(
        sample.requests_per_second > 0.0,
        "no result from wrk for {url}:\n{text}"
    );
    sample
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

fn median(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| {
        let mut values: Vec<f64> = samples.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Sample {
        requests_per_second: pick(|s| s.requests_per_second),
        p50_ms: pick(|s| s.p50_ms),
        p99_ms: pick(|s| s.p99_ms),
    }
}
