//! `healthcheck`: exit 0 when the firewall on `LISTEN` answers `/healthz` (a container health
//! check that needs no shell or curl).

use std::process::ExitCode;
use std::time::Duration;

use graphql_firewall::config::Config;
use graphql_firewall::upstream::{Settings, Upstream};

pub fn run(config: &Config) -> ExitCode {
    let mut address = config.server.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = Duration::from_secs(3);
    let healthy = url::Url::parse(&format!("http://{address}/healthz"))
        .ok()
        .and_then(|url| {
            Upstream::new(&Settings {
                url,
                timeout,
                connect_timeout: timeout,
                max_concurrent: 1,
                queue_timeout: timeout,
            })
            .ok()
        })
        .zip(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok(),
        )
        .is_some_and(|(client, runtime)| {
            runtime.block_on(client.probe(timeout)) == Some(axum::http::StatusCode::OK)
        });
    if healthy {
        ExitCode::SUCCESS
    } else {
        eprintln!("graphql-firewall healthcheck: http://{address}/healthz did not answer 200");
        ExitCode::FAILURE
    }
}
