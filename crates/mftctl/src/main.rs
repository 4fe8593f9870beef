use clap::Parser;

fn main() -> std::process::ExitCode {
    // clap prints usage errors itself and exits 2; everything after parsing exits 0 or 1.
    mftplus_process::release_large_allocations_to_os();
    let cli = mftctl::Cli::parse();
    std::process::ExitCode::from(mftctl::main_with(cli))
}
