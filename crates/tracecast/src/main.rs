//! The tracecast command line: thin wiring over the library crates.

mod billing;
mod cli;
mod delivery;
mod inbox;
mod mark;
mod members;
mod protect;
mod serve;
mod share;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

/// Long-running roles free large buffers after bursts of work (marking a
/// copy, serving whole files); jemalloc returns that memory to the system
/// where glibc's arenas would keep it resident.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        cli::Command::Keygen(args) => mark::keygen(&args).map(|()| ExitCode::SUCCESS),
        cli::Command::Mark(cli::MarkCommand::Embed(args)) => {
            mark::embed(&args, quiet).map(|()| ExitCode::SUCCESS)
        }
        cli::Command::Mark(cli::MarkCommand::Detect(args)) => mark::detect(&args, quiet),
        cli::Command::Demo(args) => {
            // Server logs only when asked (RUST_LOG=info): the narration
            // is the show.
            if std::env::var_os("RUST_LOG").is_some() {
                serve::init_logs(quiet);
            }
            tracecast_demo::run(&tracecast_demo::DemoOptions {
                dir: args.dir,
                media: args.media,
                quiet,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Serve(args) => serve::run(&args, quiet).map(|()| ExitCode::SUCCESS),
        cli::Command::Mailbox(cmd) => inbox::mailbox(cmd, quiet),
        cli::Command::Inbox(cmd) => inbox::inbox(cmd, quiet),
        cli::Command::Account(cmd) => delivery::account(cmd),
        cli::Command::Content(cmd) => delivery::content(cmd, quiet),
        cli::Command::Buy(args) => delivery::buy(args, quiet),
        cli::Command::Trace(args) => delivery::trace(args, quiet),
        cli::Command::Sites(args) => billing::sites(args),
        cli::Command::Members(cmd) => members::run(cmd),
        cli::Command::Rental(cmd) => billing::rental(cmd),
        cli::Command::Bill(args) => billing::bill(args),
        cli::Command::Pay(args) => billing::pay(args),
        cli::Command::Ledger(cmd) => billing::ledger(cmd),
        cli::Command::Cdn(cmd) => delivery::cdn(cmd),
        cli::Command::Contract(cmd) => delivery::contract(cmd),
        cli::Command::Kiosk(cmd) => billing::kiosk(cmd),
        cli::Command::Licence(cmd) => protect::licence(cmd),
        cli::Command::Decrypt(args) => protect::decrypt(args),
        cli::Command::Service(cmd) => share::service(cmd),
        cli::Command::Device(cmd) => share::device(cmd, quiet),
    }
}
