//! Running the `vantage` binary from tests.

/// What one run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `vantage ARGS…`. Asynchronous, so servers on the calling test's runtime keep answering
/// meanwhile.
pub async fn vantage(args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vantage"))
        .args(args)
        .output()
        .await
        .expect("vantage runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
