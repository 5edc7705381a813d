//! The `seam` command-line tool.

use std::process::ExitCode;

fn main() -> ExitCode {
    seam_compiler::cli::main()
}
