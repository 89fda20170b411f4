use std::process::ExitCode;

fn main() -> ExitCode {
    kmsload::cli::main()
}
