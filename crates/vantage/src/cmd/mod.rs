//! One module per subcommand; `dispatch` is the single `match` over them.

/// `vantage agents`.
mod agents;
/// `vantage asn`.
mod asn;
/// `vantage data update|status`.
mod data;
/// `vantage dns`.
mod dns;
/// `vantage http`.
mod http;
/// `vantage ipcalc`.
mod ipcalc;
/// Helpers shared by the lookup subcommands.
mod lookups;
/// `vantage mtr`.
mod mtr;
/// `vantage oui`.
mod oui;
/// `vantage ping`.
mod ping;
/// Rendering shared by tcp and udp.
mod ports;
/// `vantage rdap`.
mod rdap;
/// `vantage rdns`.
mod rdns;
/// `--from`: measurements on remote agents through a server.
mod remote;
/// `vantage server`.
mod server;
/// `vantage tcp`.
mod tcp;
/// `vantage trace`, and what it shares with `vantage mtr`.
mod trace;
/// `vantage udp`.
mod udp;
/// `vantage whois`.
mod whois;

use vantage_probe::{Context, Privilege};
use vantage_proto::{MeasurementResult, MeasurementSpec, SpecError};

use crate::cli::{Cli, Command, CommonArgs, RemoteArgs};
use crate::output;

/// Runs the chosen subcommand.
pub async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Ping(a) => ping::run(a.0).await,
        Command::Tcp(a) => tcp::run(a.0).await,
        Command::Udp(a) => udp::run(a.0).await,
        Command::Dns(a) => dns::run(a.0).await,
        Command::Trace(a) => trace::run(a.0).await,
        Command::Mtr(a) => mtr::run(a.0).await,
        Command::Ipcalc(a) => ipcalc::run(a.0),
        Command::Oui(a) => oui::run(a.0),
        Command::Asn(a) => asn::run(a.0).await,
        Command::Whois(a) => whois::run(a.0).await,
        Command::Rdap(a) => rdap::run(a.0).await,
        Command::Rdns(a) => rdns::run(a.0).await,
        Command::Data(c) => data::run(c).await,
        Command::Http(a) => http::run(a.0).await,
        Command::Server(a) => server::run(a.0).await,
        Command::Agent(a) => vantage_agent::cli::execute(a.0).await,
        Command::Agents(a) => agents::run(a.0).await,
    }
}

/// The probe context for the common flags; Ctrl-C cancels the run so partial results print.
pub(crate) fn context(common: &CommonArgs, rate: u32) -> Context {
    let privilege = if common.raw {
        Privilege::Raw
    } else if common.unprivileged {
        Privilege::Unprivileged
    } else {
        Privilege::Auto
    };
    cancel_on_ctrl_c(Context {
        privilege,
        rate,
        ..Context::default()
    })
}

/// Cancels the context's token on Ctrl-C, so partial results print.
pub(crate) fn cancel_on_ctrl_c(cx: Context) -> Context {
    let cancel = cx.cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    cx
}

/// Validates every spec, turning the first error into a usage error naming the CLI flag.
pub(crate) fn validate_all(specs: &[MeasurementSpec]) -> Result<(), u8> {
    for s in specs {
        if let Err(e) = s.validate() {
            return Err(output::usage_error(describe_spec_error(&e)));
        }
    }
    Ok(())
}

/// Validates one spec, runs it, prints JSON Lines or the human report, and returns the exit code
/// `exit` derives from the results. For subcommands with a single measurement (dns, http).
pub(crate) async fn run_single(
    spec: MeasurementSpec,
    json: bool,
    remote: &RemoteArgs,
    print: fn(&MeasurementResult),
    exit: fn(&[MeasurementResult]) -> u8,
) -> u8 {
    let specs = [spec];
    if let Err(code) = validate_all(&specs) {
        return code;
    }
    if let Some(code) = remote::maybe_run(remote, &specs, json).await {
        return code;
    }
    let cx = cancel_on_ctrl_c(Context::default());
    let results = run_with_progress(&specs, &cx).await;
    if json {
        if let Err(e) = output::print_json_lines(&results) {
            return output::usage_error(format!("cannot write output: {e}"));
        }
    } else {
        results.iter().for_each(print);
    }
    exit(&results)
}

/// Runs the specs with a spinner when the run is long enough to need one.
pub(crate) async fn run_with_progress(
    specs: &[MeasurementSpec],
    cx: &Context,
) -> Vec<MeasurementResult> {
    let longest = specs.iter().map(|s| s.max_duration()).fold(0.0, f64::max);
    let what = match specs {
        [one] => format!("{} {}", one.kind(), one.target()),
        many => format!("{} {} targets", many[0].kind(), many.len()),
    };
    let pb = output::progress(std::time::Duration::from_secs_f64(longest), what);
    let results = vantage_probe::run_many(specs, cx).await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    results
}

/// Prints failures' sentences on stderr for single-target human output.
pub(crate) fn print_errors(results: &[MeasurementResult]) {
    for r in results {
        if let Some(e) = &r.error
            && !r.outcome.is_ok()
        {
            eprintln!("vantage: {}: {e}", r.target);
        }
    }
}

/// A spec error in terms of the command-line flag the user typed.
pub(crate) fn describe_spec_error(e: &SpecError) -> String {
    let flag = match e.field.as_str() {
        "count" => "-c/--count",
        "interval" => "-i/--interval",
        "timeout" => "-W/--timeout",
        "size" => "-s/--size",
        "ttl" => "-t/--ttl",
        "tos" => "--tos",
        "source" => "-S/--source",
        "interface" => "-I/--interface",
        "family" => "-4/-6",
        "port" => "-p/--port",
        "source_ports" => "--source-ports",
        "target" => "TARGET",
        "name" => "NAME",
        "qtype" => "-t/--type",
        "servers" => "@SERVER",
        "edns_size" => "--edns-size",
        "retries" => "--retries",
        "first_ttl" => "-f/--first-ttl",
        "max_ttl" => "-m/--max-ttl",
        "probes" => "-q/--queries",
        "flows" => "--flows",
        "rounds" => "-c/--count",
        "source_port" => "--source-port",
        "url" => "URL",
        "connect_to" => "--connect-to",
        "headers" => "-H/--header",
        "max_redirects" => "--max-redirects",
        "body_limit" => "--max-body",
        "ca_cert" => "--cacert",
        other => other,
    };
    format!("invalid {flag}: {}", e.message)
}
