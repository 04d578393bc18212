//! (f) Thread-per-core on io_uring: one monoio runtime (io_uring driver only) per core, each with
//! its own `SO_REUSEPORT` listener, monoio-http's HTTP/1.1 codecs on both sides, and one upstream
//! connection per downstream connection (opened at its first request), so that nothing is shared
//! between threads. It adds `X-Forwarded-For`, as the nginx proxy (b) does. When the kernel or
//! the sandbox refuses io_uring, it prints the error and exits with status 3.

use std::net::SocketAddr;

use http::HeaderValue;
use monoio::io::Splitable;
use monoio::io::sink::SinkExt;
use monoio::io::stream::Stream;
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use monoio_http::h1::codec::decoder::{FillPayload, RequestDecoder, ResponseDecoder};
use monoio_http::h1::codec::encoder::GenericEncoder;

fn main() {
    let args = proxy_engines::Args::parse();
    let threads: Vec<_> = (0..args.threads)
        .map(|_| {
            std::thread::spawn(move || {
                let runtime = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                    .enable_timer()
                    .build();
                let mut runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        eprintln!("io_uring refused: {error} ({error:?})");
                        std::process::exit(3);
                    }
                };
                runtime.block_on(serve(args.listen, args.upstream));
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

async fn serve(listen: SocketAddr, upstream: SocketAddr) {
    let options = ListenerOpts::new().reuse_port(true);
    let listener = TcpListener::bind_with_config(listen, &options).unwrap_or_else(|error| {
        eprintln!("cannot listen on {listen}: {error}");
        std::process::exit(1);
    });
    loop {
        if let Ok((stream, peer)) = listener.accept().await {
            monoio::spawn(connection(stream, peer, upstream));
        }
    }
}

/// Serves one downstream connection's requests in order, each forwarded on the connection's own
/// upstream connection; returns (closing both) at the first error or end of stream.
async fn connection(stream: TcpStream, peer: SocketAddr, upstream: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let forwarded_for = HeaderValue::from_str(&peer.ip().to_string()).ok();
    let (read, write) = stream.into_split();
    let mut requests = RequestDecoder::new(read);
    let mut answers = GenericEncoder::new(write);
    let mut upstream_side = None;
    while let Some(Ok(mut request)) = requests.next().await {
        if requests.fill_payload().await.is_err() {
            return;
        }
        if upstream_side.is_none() {
            let Ok(up) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = up.set_nodelay(true);
            let (up_read, up_write) = up.into_split();
            upstream_side = Some((GenericEncoder::new(up_write), ResponseDecoder::new(up_read)));
        }
        let Some((sender, responses)) = upstream_side.as_mut() else {
            return;
        };
        if let Some(value) = &forwarded_for {
            request
                .headers_mut()
                .insert("x-forwarded-for", value.clone());
        }
        if sender.send_and_flush(request).await.is_err() {
            return;
        }
        let Some(Ok(answer)) = responses.next().await else {
            return;
        };
        if responses.fill_payload().await.is_err() {
            return;
        }
        if answers.send_and_flush(answer).await.is_err() {
            return;
        }
    }
}
