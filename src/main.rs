//! The `graphql-firewall` command: parses the command line and hands it to [`cli`], which owns
//! every command, its output and its exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

// glibc's malloc cost ~10% of the proxy path's CPU in profiles (many small, short-lived
// allocations across threads); mimalloc handles that pattern better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::run(cli::Cli::parse())
}
