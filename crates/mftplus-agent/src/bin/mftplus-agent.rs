//! `mftplus-agent`: the host agent alone, for boxes. The same commands as `mftplus agent`.

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mftplus-agent",
    version,
    about = "The MFTPlus host agent: enroll this box, then report and converge on the operator's intent"
)]
struct Cli {
    #[command(flatten)]
    agent: mftplus_agent::cli::AgentArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    mftplus_process::release_large_allocations_to_os();
    // One loop that waits on the network most of the time: one thread is all it needs.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    mftplus_process::init_logging();
    match runtime.block_on(mftplus_agent::cli::run(cli.agent)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
