//! The `claimset` binary: parse the command line and hand over to [`claimset::cli`].

fn main() -> std::process::ExitCode {
    claimset::cli::main()
}
