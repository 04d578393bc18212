//! (e) Pingora: the simplest `ProxyHttp` to the static upstream, with Pingora's recommended
//! settings: one thread per core for the service (`threads`), work stealing and the upstream
//! keep-alive pool (128 connections) as the defaults set them. It adds `X-Forwarded-For`, as the
//! nginx proxy (b) does.

use async_trait::async_trait;
use pingora_core::server::Server;
use pingora_core::server::configuration::ServerConf;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};

struct Forward {
    upstream: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Forward {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora_core::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        request: &mut pingora_http::RequestHeader,
        _ctx: &mut (),
    ) -> pingora_core::Result<()> {
        if let Some(peer) = session.client_addr().and_then(|a| a.as_inet()) {
            request.insert_header("X-Forwarded-For", peer.ip().to_string())?;
        }
        Ok(())
    }
}

fn main() {
    let args = proxy_engines::Args::parse();
    let conf = ServerConf {
        threads: args.threads,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora_proxy::http_proxy_service(
        &server.configuration,
        Forward {
            upstream: args.upstream,
        },
    );
    proxy.add_tcp(&args.listen.to_string());
    server.add_service(proxy);
    server.run_forever();
}
