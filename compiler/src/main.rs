//! The `seam` command-line tool.

use std::process::ExitCode;

fn main() -> ExitCode {
    restore_default_sigpipe();
    seam_compiler::cli::main()
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`seam inspect B | head`)
/// would panic; like other command-line tools, end quietly instead.
#[cfg(unix)]
fn restore_default_sigpipe() {
    // SAFETY: called first thing in `main`, before any other thread exists;
    // setting a signal's disposition to the default has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_default_sigpipe() {}
