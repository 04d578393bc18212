//! What every engine binary shares: its command line.

use std::net::SocketAddr;

/// `--listen ADDR --upstream ADDR [--threads N]`; threads default to the machine's cores.
pub struct Args {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub threads: usize,
}

impl Args {
    /// Parses the process's arguments; exits with a usage line on anything else.
    pub fn parse() -> Args {
        let mut listen = None;
        let mut upstream = None;
        let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().unwrap_or_else(|| usage());
            match flag.as_str() {
                "--listen" => listen = value.parse().ok(),
                "--upstream" => upstream = value.parse().ok(),
                "--threads" => threads = value.parse().unwrap_or_else(|_| usage()),
                _ => usage(),
            }
        }
        match (listen, upstream) {
            (Some(listen), Some(upstream)) => Args {
                listen,
                upstream,
                threads,
            },
            _ => usage(),
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: --listen IP:PORT --upstream IP:PORT [--threads N]");
    std::process::exit(2)
}
