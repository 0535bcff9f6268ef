//! The lean `vantage-agent` binary as a user meets it: exit code 2 and a sentence for a missing
//! enrolment, a bad token or a bad label, nothing written on failure, help with examples.
//!
//! This file also makes the workspace test run build the binary (cargo builds a package's
//! binaries only for its own integration tests); the server's namespace end-to-end tests run it.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vantage-agent");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("VANTAGE_AGENT_DATA_DIR")
        .env_remove("VANTAGE_ENROLL_TOKEN")
        .output()
        .expect("vantage-agent runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn running_without_an_enrolment_says_how_to_enrol_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("agent");
    let o = run(&["--data-dir", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("not enrolled") && e.contains("enroll --server"),
        "{e}"
    );
    assert!(
        !data.exists(),
        "nothing is created for an agent that cannot run"
    );
}

#[test]
fn a_malformed_token_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("agent");
    let o = run(&[
        "enroll",
        "--server",
        "https://127.0.0.1:9",
        "--token",
        "not-a-token",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("token"), "{}", stderr(&o));
    assert!(!data.exists(), "a refused enrolment writes no identity");
}

#[test]
fn a_label_without_a_value_is_a_usage_error() {
    let o = run(&[
        "enroll",
        "--server",
        "https://127.0.0.1:9",
        "--token",
        "x",
        "--label",
        "env",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("KEY=VALUE"), "{}", stderr(&o));
}

#[test]
fn help_shows_examples() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Examples:") && out.contains("enroll --server"),
        "{out}"
    );
}
