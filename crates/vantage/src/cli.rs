//! Argument definitions. Each measurement subcommand maps its flags onto the kind's spec in
//! `vantage-proto`, so the CLI, the REST API and agents share one meaning and one validation.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vantage_proto::{Family, PortRange, TraceProtocol, defaults};

/// Distributed network diagnostics and monitoring.
#[derive(Debug, Parser)]
#[command(name = "vantage", version, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send ICMP echo requests to one or many targets (hosts, addresses, CIDR ranges, a file).
    #[command(after_help = PING_EXAMPLES)]
    Ping(Deferred<PingArgs>),
    /// Probe a TCP port: full handshake (connect) or half-open SYN.
    #[command(after_help = TCP_EXAMPLES)]
    Tcp(Deferred<TcpArgs>),
    /// Probe with UDP datagrams to a closed port, timed by the ICMP port-unreachable.
    #[command(after_help = UDP_EXAMPLES)]
    Udp(Deferred<UdpArgs>),
    /// Query DNS servers (or the system's resolvers) for a name, timed, with dig-style output.
    #[command(after_help = DNS_EXAMPLES)]
    Dns(Deferred<DnsArgs>),
    /// Trace the routers on the way to a target, every hop probed at once (Paris style).
    #[command(after_help = TRACE_EXAMPLES)]
    Trace(Deferred<TraceArgs>),
    /// Trace repeatedly and report per-hop loss and latency, like `mtr --report`.
    #[command(after_help = MTR_EXAMPLES)]
    Mtr(Deferred<MtrArgs>),
    /// IP calculator: prefix details, splitting, summarising, containment.
    #[command(after_help = IPCALC_EXAMPLES)]
    Ipcalc(Deferred<IpcalcArgs>),
    /// MAC address vendors from the IEEE registries (MA-L, MA-M, MA-S, CID, IAB).
    #[command(after_help = OUI_EXAMPLES)]
    Oui(Deferred<OuiArgs>),
    /// IP address → AS, AS name, prefix and country; AS number → name and prefixes.
    #[command(after_help = ASN_EXAMPLES)]
    Asn(Deferred<AsnArgs>),
    /// WHOIS for a domain, address, prefix or AS number, following referrals from IANA.
    #[command(after_help = WHOIS_EXAMPLES)]
    Whois(Deferred<WhoisArgs>),
    /// RDAP for a domain, address, prefix or AS number, through the IANA bootstrap files.
    #[command(after_help = RDAP_EXAMPLES)]
    Rdap(Deferred<RdapArgs>),
    /// Reverse DNS (PTR) names of addresses and prefixes, resolved concurrently.
    #[command(after_help = RDNS_EXAMPLES)]
    Rdns(Deferred<RdnsArgs>),
    /// Offline data sets for the lookups: install or refresh them, show what is installed.
    #[command(subcommand)]
    Data(DataCommand),
    /// Request a URL and time each phase: DNS, TCP connect, TLS, time to first byte, download.
    #[command(after_help = HTTP_EXAMPLES)]
    Http(Deferred<HttpArgs>),
    /// Run the Vantage server: REST API, agent port, built-in CA, storage, a built-in agent.
    #[command(after_help = SERVER_EXAMPLES)]
    Server(Deferred<ServerArgs>),
    /// Run an agent enrolled with a server, or enrol it (`vantage agent enroll`).
    Agent(Deferred<vantage_agent::cli::AgentArgs>),
    /// List the agents a server knows: status, location, labels, version, last seen.
    #[command(after_help = AGENTS_EXAMPLES)]
    Agents(Deferred<AgentsArgs>),
}

/// A subcommand's arguments, defined only when that subcommand is the one being parsed.
///
/// clap builds the definition of every argument of every subcommand before it parses anything
/// (about 0.5 ms for this command line, a third of a one-shot trace's own time on a LAN).
/// Wrapped in `Deferred`, a subcommand is named and described at once, so that `vantage --help`
/// lists it, but its arguments are added by [`clap::Command::defer`] when clap builds that
/// subcommand: for the one the user typed, or for help that shows it. Parsing, help and errors
/// are those of the inner type.
#[derive(Debug, Clone)]
pub struct Deferred<T>(pub T);

/// The subcommand's description is the variant's (as without deferral), not the one the
/// argument struct's own doc comment would set.
fn keep_about(cmd: clap::Command, define: fn(clap::Command) -> clap::Command) -> clap::Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let cmd = define(cmd);
    let cmd = match about {
        Some(a) => cmd.about(a),
        None => cmd.about(None),
    };
    match long_about {
        Some(a) => cmd.long_about(a),
        None => cmd.long_about(None),
    }
}

fn define<T: Args>(cmd: clap::Command) -> clap::Command {
    keep_about(cmd, T::augment_args)
}

fn define_for_update<T: Args>(cmd: clap::Command) -> clap::Command {
    keep_about(cmd, T::augment_args_for_update)
}

impl<T: Args> Args for Deferred<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(define::<T>)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(define_for_update::<T>)
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Deferred<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Deferred)
    }
    fn from_arg_matches_mut(m: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(m).map(Deferred)
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
    fn update_from_arg_matches_mut(&mut self, m: &mut clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(m)
    }
}

impl Command {
    /// Whether the command runs on the main thread alone: a single trace waits on the network,
    /// not on the CPU, and a thread pool only costs it start-up time (measured: half the wall
    /// time of a one-round trace on a busy two-core machine).
    pub fn single_threaded(&self) -> bool {
        matches!(self, Command::Trace(_) | Command::Mtr(_))
    }

    /// Whether the command is a long-running service, whose operators expect its informational
    /// log lines by default.
    pub fn is_service(&self) -> bool {
        matches!(self, Command::Server(_) | Command::Agent(_))
    }
}

const SERVER_EXAMPLES: &str = "Examples:
  vantage server                                   API on 127.0.0.1:7780, agents on 127.0.0.1:7781, data in ./vantage-data
  vantage server --listen 0.0.0.0:7780 --agent-listen 0.0.0.0:7781 --agent-url https://vantage.example.net:7781
  vantage server --config /etc/vantage/server.toml --no-local-agent
  VANTAGE_ADMIN_TOKEN=$(openssl rand -hex 24) vantage server --json

On first start it creates its CA and an admin API token, and prints the token once (unless
VANTAGE_ADMIN_TOKEN gives one). Precedence: flags, then VANTAGE_* variables (VANTAGE_DATA_DIR,
VANTAGE_LISTEN, VANTAGE_AGENT_LISTEN, VANTAGE_LOCAL_AGENT, VANTAGE_AGENT_URL …), then the TOML
file of --config (keys as in the variables, lower case), then the defaults. Stops on Ctrl-C or
SIGTERM.";

const AGENTS_EXAMPLES: &str = "Examples:
  vantage agents --server http://127.0.0.1:7780 --token $TOKEN
  VANTAGE_SERVER=http://vantage.example.net:7780 VANTAGE_TOKEN=... vantage agents --json
  vantage agents token       one-time enrolment token and the command for the agent's host

The server URL and token come from --server/--token, else VANTAGE_SERVER/VANTAGE_TOKEN, else the
client file ($VANTAGE_CLIENT_CONFIG, or ~/.config/vantage/client.toml with server = \"...\" and
token = \"...\"); the URL defaults to http://127.0.0.1:7780.";

const REMOTE_HELP: &str = "Remote agents (through a Vantage server)";

/// Where a Vantage server's API is and how to authenticate to it. Missing values come from
/// `VANTAGE_SERVER` / `VANTAGE_TOKEN`, then the client file (see `vantage agents --help`).
#[derive(Debug, Clone, Default, Args)]
pub struct ServerConnArgs {
    /// The server's API URL [default: $VANTAGE_SERVER, the client file, http://127.0.0.1:7780].
    #[arg(id = "server_url", long = "server", value_name = "URL", help_heading = REMOTE_HELP)]
    pub url: Option<String>,
    /// API token [default: $VANTAGE_TOKEN, the client file].
    #[arg(long, value_name = "TOKEN", help_heading = REMOTE_HELP)]
    pub token: Option<String>,
}

/// `--from SELECTOR`: run the measurement on remote agents through a server instead of here.
#[derive(Debug, Clone, Default, Args)]
pub struct RemoteArgs {
    /// Run on the agents SELECTOR chooses, through the server, and print one row per agent:
    /// all, name:lab-1, country:DE@3, env:prod+asn:3320, msm:<id> (',' OR, '+' AND, '@N' at most N).
    #[arg(long, value_name = "SELECTOR", help_heading = REMOTE_HELP)]
    pub from: Option<String>,
    #[command(flatten)]
    pub conn: ServerConnArgs,
}

/// `vantage server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Directory of the database, the CA and the built-in agent [default: ./vantage-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// REST API address (port 0: any free port, printed at start) [default: 127.0.0.1:7780].
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// Agent (mutual TLS) address [default: 127.0.0.1:7781].
    #[arg(long, value_name = "HOST:PORT")]
    pub agent_listen: Option<SocketAddr>,
    /// The URL agents dial, written into enrolment commands [default: https://<agent address>].
    #[arg(long, value_name = "URL")]
    pub agent_url: Option<String>,
    /// Do not run the built-in local agent.
    #[arg(long)]
    pub no_local_agent: bool,
    /// TOML configuration file (keys: data_dir, listen, agent_listen, local_agent, agent_url,
    /// server_names, heartbeat_interval, heartbeat_timeout, result_grace, max_unacked,
    /// enrollment_token_ttl).
    #[arg(long, value_name = "FILE", env = "VANTAGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the start-up facts (addresses, CA fingerprint, first admin token) as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// `vantage agents`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentsArgs {
    /// Something other than listing.
    #[command(subcommand)]
    pub command: Option<AgentsCommand>,
    #[command(flatten)]
    pub conn: ServerConnArgs,
    /// Print one JSON object per agent per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Subcommands of `vantage agents`.
#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Create a one-time enrolment token and print the `vantage agent enroll` command that uses it.
    Token(AgentsTokenArgs),
}

/// `vantage agents token`.
#[derive(Debug, Args)]
pub struct AgentsTokenArgs {
    /// Seconds the token stays valid (10 s to 30 days) [default: the server's, one hour].
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<f64>,
    #[command(flatten)]
    pub conn: ServerConnArgs,
    /// Print the token, its expiry, the CA fingerprint, the agent URL and the command as JSON.
    #[arg(long)]
    pub json: bool,
}

const PING_EXAMPLES: &str = "Examples:
  vantage ping 192.0.2.1
  vantage ping -c 10 -i 0.2 example.com
  vantage ping -6 -s 1400 --json example.com
  vantage ping -c 1 10.0.0.0/24            sweep a range, one packet each
  vantage ping -c 1 -f targets.txt         one target per line ('-' reads stdin)
  vantage ping --from 'country:DE@3' -c 5 example.com     from up to 3 agents in Germany (via the server)";

const TCP_EXAMPLES: &str = "Examples:
  vantage tcp -p 443 example.com
  vantage tcp -p 443 --syn --source-ports 33000-33015 -c 16 192.0.2.1
  vantage tcp --from all -p 443 example.com             from every agent (via the server)";

const UDP_EXAMPLES: &str = "Examples:
  vantage udp -p 33434 192.0.2.1
  vantage udp -p 33434 --source-ports 40000-40003 -c 8 --json 192.0.2.1
  vantage udp --from name:lab-1 -p 33434 192.0.2.1     from one agent (via the server)";

const DNS_EXAMPLES: &str = "Examples:
  vantage dns example.com                       ask the system's resolvers (/etc/resolv.conf)
  vantage dns -t AAAA example.com @192.0.2.53 @2001:db8::53
  vantage dns example.com MX @ns1.example.net --norecurse
  vantage dns example.com TYPE65 --dnssec --edns-size 1232 --json @192.0.2.53
  vantage dns --allow-private -p 5353 @127.0.0.1 www.example.test
  vantage dns --from 'env:prod' example.com MX   from the agents labelled env=prod (via the server)

Exit codes: 0 every server answered NOERROR, 1 some did not (NXDOMAIN, SERVFAIL, REFUSED,
timeout), 2 bad input or a server refused by the destination policy.";
const IPCALC_EXAMPLES: &str = "Examples:
  vantage ipcalc 192.0.2.130/25
  vantage ipcalc 2001:db8::/127
  vantage ipcalc 10.1.2.3/255.255.0.0
  vantage ipcalc 10.0.0.0/22 --split 24
  vantage ipcalc --summarize 192.0.2.0/25 192.0.2.128/25 10.0.0.1-10.0.0.6
  vantage ipcalc 10.0.0.0/8 --contains 10.1.2.0/24     exit 0 if it does, 1 if not";

const OUI_EXAMPLES: &str = "Examples:
  vantage oui 00:1A:2B:3C:4D:5E
  vantage oui 001a.2b3c.4d5e 00-1b-21 8C1F64AFA
  vantage oui --search cisco
The built-in IEEE table works offline; `vantage data update oui` installs a fresher one.";

const ASN_EXAMPLES: &str = "Examples:
  vantage asn 193.0.6.139 2001:67c:2e8::1
  vantage asn --rdns 8.8.8.8
  vantage asn AS3333
  vantage asn AS64500 --set-name 'Our transit (FRA)'    local AS name override
  vantage asn --list-overrides
Needs an IP → ASN table: `vantage data update asn` (see `vantage data update --help`).";

const WHOIS_EXAMPLES: &str = "Examples:
  vantage whois example.com
  vantage whois 193.0.6.139
  vantage whois AS3333
  vantage whois --server whois.ripe.net --no-follow 193.0.0.0/21";

const RDAP_EXAMPLES: &str = "Examples:
  vantage rdap example.com
  vantage rdap 2001:67c:2e8::1
  vantage rdap AS3333 --raw
  vantage rdap --server https://rdap.db.ripe.net/ 193.0.6.139";

const RDNS_EXAMPLES: &str = "Examples:
  vantage rdns 192.0.2.1 2001:db8::1
  vantage rdns 192.0.2.0/28
  vantage rdns --server 192.0.2.53 --timeout 1 198.51.100.7";

const DATA_UPDATE_EXAMPLES: &str = "Data sets and their default public sources:
  oui      IEEE registries: https://standards-oui.ieee.org/oui/oui.csv, oui28/mam.csv,
           oui36/oui36.csv, cid/cid.csv, iab/iab.csv (replaces the built-in table's registries)
  asn      iptoasn.com (PDDL 1.0): https://iptoasn.com/data/ip2asn-combined.tsv.gz
           also reads ip-location-db CSV (start,end,asn,name), e.g. asn-ipv4.csv + asn-ipv6.csv
  country  DB-IP Country Lite (CC BY 4.0): https://download.db-ip.com/free/dbip-country-lite-YYYY-MM.mmdb.gz
           any MMDB with country_code or country.iso_code works
  rdap     IANA bootstrap files: https://data.iana.org/rdap/{asn,dns,ipv4,ipv6}.json

Examples:
  vantage data update asn
  vantage data update asn --from asn-ipv4.csv --from asn-ipv6.csv
  vantage data update country --from geo-whois-asn-country.mmdb
  vantage data update oui --from oui.csv --from mam.csv --from oui36.csv
  vantage data update rdap --from ./bootstrap-dir/";

/// Where the offline lookup data sets live (shared with the server).
#[derive(Debug, Args)]
pub struct DataDirArgs {
    /// Data directory (the server uses the same one).
    #[arg(
        long = "data-dir",
        env = "VANTAGE_DATA_DIR",
        default_value = vantage_lookup::datadir::DEFAULT_DATA_DIR,
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
}

/// `vantage ipcalc`.
#[derive(Debug, Args)]
pub struct IpcalcArgs {
    /// Prefixes or addresses: 192.0.2.1/24, 192.0.2.1/255.255.255.0, 2001:db8::/48 (ranges
    /// FIRST-LAST with --summarize).
    #[arg(value_name = "CIDR", required = true)]
    pub inputs: Vec<String>,
    /// Split the prefix into subnets of this length.
    #[arg(long, value_name = "LEN", conflicts_with_all = ["summarize", "contains", "overlaps"])]
    pub split: Option<u8>,
    /// Largest number of subnets --split may print.
    #[arg(long, value_name = "N", default_value_t = vantage_lookup::ipcalc::DEFAULT_MAX_SUBNETS)]
    pub max: u64,
    /// Summarise all inputs into the fewest prefixes.
    #[arg(long, alias = "summarise", conflicts_with_all = ["contains", "overlaps"])]
    pub summarize: bool,
    /// Whether the prefix contains this prefix or address (exit 1 if not).
    #[arg(long, value_name = "CIDR", conflicts_with = "overlaps")]
    pub contains: Option<String>,
    /// Whether the prefix shares any address with this one (exit 1 if not).
    #[arg(long, value_name = "CIDR")]
    pub overlaps: Option<String>,
    /// Print JSON (one object per line) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `vantage oui`.
#[derive(Debug, Args)]
pub struct OuiArgs {
    /// MAC addresses or prefixes in any notation (00:1A:2B:3C:4D:5E, 001a.2b3c.4d5e, 00-1b-21 …).
    #[arg(
        value_name = "MAC",
        required_unless_present = "search",
        conflicts_with = "search"
    )]
    pub macs: Vec<String>,
    /// Find vendors whose name contains this text (case-insensitive).
    #[arg(long, value_name = "NAME")]
    pub search: Option<String>,
    /// Largest number of search results printed.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Print JSON (one object per line) instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataDirArgs,
}

/// `vantage asn`.
#[derive(Debug, Args)]
pub struct AsnArgs {
    /// IP addresses and AS numbers (AS64500, 64500, asdot AS1.10).
    #[arg(value_name = "IP|ASN", required_unless_present = "list_overrides")]
    pub queries: Vec<String>,
    /// Also look up the reverse DNS name of each address (asks the system resolver).
    #[arg(long)]
    pub rdns: bool,
    /// Print every prefix of an AS (the table shows the first 20).
    #[arg(long)]
    pub all_prefixes: bool,
    /// Set a local name for the given AS number, shown wherever the AS appears.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["unset_name", "list_overrides"])]
    pub set_name: Option<String>,
    /// Remove the local names of the given AS numbers.
    #[arg(long, conflicts_with = "list_overrides")]
    pub unset_name: bool,
    /// List the local AS name overrides.
    #[arg(long)]
    pub list_overrides: bool,
    /// Print JSON (one object per line) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataDirArgs,
}

/// `vantage whois`.
#[derive(Debug, Args)]
pub struct WhoisArgs {
    /// Domain name, IP address, prefix or AS number.
    #[arg(value_name = "QUERY")]
    pub query: String,
    /// The first server to ask (HOST or HOST:PORT).
    #[arg(long, value_name = "HOST[:PORT]", default_value = vantage_lookup::whois::DEFAULT_SERVER)]
    pub server: String,
    /// Do not follow referrals.
    #[arg(long)]
    pub no_follow: bool,
    /// Servers asked at most, referrals included.
    #[arg(long, value_name = "N", default_value_t = vantage_lookup::whois::DEFAULT_MAX_HOPS)]
    pub max_hops: usize,
    /// Seconds allowed per server.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Print only the parsed fields, not the raw answer.
    #[arg(long)]
    pub brief: bool,
    /// Print JSON (every server's raw answer and the parsed fields).
    #[arg(long)]
    pub json: bool,
}

/// `vantage rdap`.
#[derive(Debug, Args)]
pub struct RdapArgs {
    /// Domain name, IP address, prefix or AS number.
    #[arg(value_name = "QUERY")]
    pub query: String,
    /// Ask this RDAP base URL instead of the one the bootstrap files name.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Seconds allowed for the request.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0)]
    pub timeout: f64,
    /// Print the registry's raw JSON instead of the summary.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// Print JSON (summary and raw answer).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataDirArgs,
}

/// `vantage rdns`.
#[derive(Debug, Args)]
pub struct RdnsArgs {
    /// IP addresses or CIDR prefixes (each address of a prefix is looked up).
    #[arg(value_name = "IP|CIDR", required = true)]
    pub targets: Vec<String>,
    /// DNS servers to ask (IP or IP:PORT; repeatable) instead of the system resolver.
    #[arg(long = "server", value_name = "IP[:PORT]")]
    pub servers: Vec<String>,
    /// Seconds allowed per query attempt.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub timeout: f64,
    /// Lookups in flight at once.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub concurrency: usize,
    /// Largest number of addresses the prefixes may expand to.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_targets: usize,
    /// Print JSON (one object per line) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `vantage data`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Install or refresh a data set from its public source or from files / URLs.
    #[command(after_help = DATA_UPDATE_EXAMPLES)]
    Update(DataUpdateArgs),
    /// Show which data sets are installed, their sources, dates and licences.
    Status(DataStatusArgs),
}

/// `vantage data update`.
#[derive(Debug, Args)]
pub struct DataUpdateArgs {
    /// Which data set: oui, asn, country or rdap.
    #[arg(value_name = "DATASET", value_parser = ["oui", "asn", "country", "rdap"])]
    pub dataset: String,
    /// Read from these files or URLs instead of the public default (repeatable).
    #[arg(long = "from", value_name = "FILE|URL")]
    pub from: Vec<String>,
    /// Licence to record (when the source is not one Vantage recognises).
    #[arg(long, value_name = "TEXT")]
    pub licence: Option<String>,
    /// Attribution to record and show with every answer.
    #[arg(long, value_name = "TEXT")]
    pub attribution: Option<String>,
    /// Seconds allowed per download.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub timeout: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataDirArgs,
}

/// `vantage data status`.
#[derive(Debug, Args)]
pub struct DataStatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataDirArgs,
}

const TRACE_EXAMPLES: &str = "Examples:
  vantage trace example.com
  vantage trace -n -q 1 192.0.2.1                   one probe per hop, no reverse DNS
  vantage trace -P tcp -p 443 example.com           TCP SYNs to port 443
  vantage trace -P udp --flows 8 -n 192.0.2.1       8 flows: every ECMP branch, and which flow took it
  vantage trace -6 --json example.com
  vantage trace --from 'name:fra-*' example.com       from agents whose names start with fra- (via the server)

Every TTL is probed at once and the trace ends as soon as the destination and every hop before it
have answered. Probes keep one flow identity (Paris traceroute), so load balancers cannot invent
hops. Needs raw sockets: run as root or grant CAP_NET_RAW (setcap cap_net_raw+ep).

Exit codes: 0 the destination answered, 1 it did not, 2 bad input or no permission.";

const MTR_EXAMPLES: &str = "Examples:
  vantage mtr example.com                           10 rounds, one probe per hop per second
  vantage mtr -c 100 -i 0.2 -n 192.0.2.1
  vantage mtr -P udp --flows 4 -c 20 192.0.2.1      per-address statistics of each ECMP branch
  vantage mtr --json -c 5 example.com
  vantage mtr --from all -c 10 example.com          one row per agent: hops, reached, loss and RTT at the target

Routers commonly answer about one probe per second to the same source after a short burst
(Linux: net.ipv4.icmp_ratelimit): more probes per hop per second can show loss that is only rate
limiting. Exit codes: 0 the destination answered, 1 it did not, 2 bad input or no permission.";

const HTTP_EXAMPLES: &str = "Examples:
  vantage http https://example.com/
  vantage http --http2 --follow https://example.com/old-path
  vantage http --connect-to 192.0.2.10:443 https://www.example.com/   one server of a pool
  vantage http -I -H 'Accept-Language: de' --json https://example.com/
  vantage http --body --max-body 1000000 https://example.com/file.bin
  vantage http --allow-private --cacert ca.pem https://intranet.example.test/
  vantage http --from 'country:DE,country:FR' https://example.com/   from agents in two countries

Exit codes: 0 the server answered (1xx-3xx), 1 it did not or answered 4xx/5xx (timeout, refused,
TLS failure, HTTP error status), 2 bad input, an unknown host or a destination the policy refuses.";

/// Options every probe subcommand has.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Source address to send from.
    #[arg(short = 'S', long = "source", value_name = "ADDRESS")]
    pub source: Option<IpAddr>,
    /// IPv4 TTL / IPv6 hop limit.
    #[arg(short = 't', long = "ttl", value_name = "TTL")]
    pub ttl: Option<u8>,
    /// IPv4 TOS byte / IPv6 traffic class (DSCP × 4), decimal or 0x-hex.
    #[arg(long, value_name = "N", value_parser = parse_u8_auto)]
    pub tos: Option<u8>,
    /// Print one JSON result envelope per target per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Never use raw sockets, even with CAP_NET_RAW.
    #[arg(long, conflicts_with_all = ["raw", "from"])]
    pub unprivileged: bool,
    /// Require raw sockets (fail without CAP_NET_RAW).
    #[arg(long, conflicts_with = "from")]
    pub raw: bool,
}

impl CommonArgs {
    /// The address family asked for, if any.
    pub fn family(&self) -> Option<Family> {
        match (self.ipv4, self.ipv6) {
            (true, _) => Some(Family::Ipv4),
            (_, true) => Some(Family::Ipv6),
            _ => None,
        }
    }
}

/// `vantage ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// Hosts, addresses or CIDR ranges.
    #[arg(value_name = "TARGET", required_unless_present = "file")]
    pub targets: Vec<String>,
    /// Read targets from a file, one per line ('-' for stdin; '#' starts a comment).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Echo requests per target.
    #[arg(short = 'c', long = "count", default_value_t = defaults::PING_COUNT)]
    pub count: u32,
    /// Seconds between requests to the same target.
    #[arg(short = 'i', long = "interval", default_value_t = defaults::PING_INTERVAL)]
    pub interval: f64,
    /// Seconds to wait for each reply.
    #[arg(short = 'W', long = "timeout", default_value_t = defaults::PING_TIMEOUT)]
    pub timeout: f64,
    /// ICMP payload size in bytes.
    #[arg(short = 's', long = "size", default_value_t = defaults::PING_SIZE)]
    pub size: u16,
    /// Set the IPv4 don't-fragment bit.
    #[arg(long)]
    pub df: bool,
    /// Interface to send from.
    #[arg(short = 'I', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// Packets per second across all targets (0: as fast as the socket takes them).
    #[arg(long, default_value_t = 0, conflicts_with = "from")]
    pub rate: u32,
    /// Largest number of targets a CIDR range or file may expand to.
    #[arg(long, default_value_t = crate::targets::DEFAULT_MAX_TARGETS, value_name = "N")]
    pub max_targets: usize,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `vantage tcp`.
#[derive(Debug, Args)]
pub struct TcpArgs {
    /// Host or address.
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
    /// Destination port.
    #[arg(short = 'p', long = "port")]
    pub port: u16,
    /// Half-open SYN probing on a raw socket (needs CAP_NET_RAW).
    #[arg(long)]
    pub syn: bool,
    /// Rotate source ports through this range, one per probe (FIRST-LAST).
    #[arg(long, value_name = "A-B")]
    pub source_ports: Option<PortRange>,
    /// Probes per target.
    #[arg(short = 'c', long = "count", default_value_t = defaults::L4_COUNT)]
    pub count: u32,
    /// Seconds between probes.
    #[arg(short = 'i', long = "interval", default_value_t = defaults::L4_INTERVAL)]
    pub interval: f64,
    /// Seconds to wait for each answer.
    #[arg(short = 'W', long = "timeout", default_value_t = defaults::L4_TIMEOUT)]
    pub timeout: f64,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `vantage udp`.
#[derive(Debug, Args)]
pub struct UdpArgs {
    /// Host or address.
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
    /// Destination port (normally a closed one).
    #[arg(short = 'p', long = "port")]
    pub port: u16,
    /// Rotate source ports through this range, one per probe (FIRST-LAST).
    #[arg(long, value_name = "A-B")]
    pub source_ports: Option<PortRange>,
    /// Probes per target.
    #[arg(short = 'c', long = "count", default_value_t = defaults::L4_COUNT)]
    pub count: u32,
    /// Seconds between probes.
    #[arg(short = 'i', long = "interval", default_value_t = defaults::L4_INTERVAL)]
    pub interval: f64,
    /// Seconds to wait for each answer.
    #[arg(short = 'W', long = "timeout", default_value_t = defaults::L4_TIMEOUT)]
    pub timeout: f64,
    /// UDP payload size in bytes.
    #[arg(short = 's', long = "size", default_value_t = defaults::UDP_SIZE)]
    pub size: u16,
    /// Set the IPv4 don't-fragment bit.
    #[arg(long)]
    pub df: bool,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Options shared by `vantage trace` and `vantage mtr`.
#[derive(Debug, Args)]
pub struct TraceOpts {
    /// Host or address to trace.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Probe protocol: icmp, udp or tcp.
    #[arg(short = 'P', long = "protocol", default_value = "icmp", value_parser = parse_trace_protocol)]
    pub protocol: TraceProtocol,
    /// Destination port (udp: 33434, tcp: 80 when not given).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Source port of the first flow (udp, tcp); flow N uses this port + N.
    #[arg(long = "source-port", value_name = "PORT")]
    pub source_port: Option<u16>,
    /// First TTL (hop limit) to probe.
    #[arg(short = 'f', long = "first-ttl", value_name = "TTL", default_value_t = defaults::TRACE_FIRST_TTL)]
    pub first_ttl: u8,
    /// Last TTL (hop limit) to probe.
    #[arg(short = 'm', long = "max-ttl", value_name = "TTL", default_value_t = defaults::TRACE_MAX_TTL)]
    pub max_ttl: u8,
    /// Probes per hop per round, on each flow [trace: 3, or 1 with --flows; mtr: 1].
    #[arg(short = 'q', long = "queries", value_name = "N")]
    pub probes: Option<u8>,
    /// Seconds to wait for each probe's answer.
    #[arg(short = 'w', long = "timeout", visible_short_alias = 'W', value_name = "SECONDS", default_value_t = defaults::TRACE_TIMEOUT)]
    pub timeout: f64,
    /// Flows to probe (multipath discovery): each has its own source port (udp, tcp) or ICMP
    /// checksum, and every address seen at a hop is listed with the flows that reached it.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub flows: u16,
    /// Do not resolve hop addresses to names.
    #[arg(short = 'n', long = "no-dns")]
    pub no_dns: bool,
    /// Payload bytes of ICMP and UDP probes.
    #[arg(short = 's', long = "size", value_name = "BYTES")]
    pub size: Option<u16>,
    /// IPv4 TOS byte / IPv6 traffic class, decimal or 0x-hex.
    #[arg(long, value_name = "N", value_parser = parse_u8_auto)]
    pub tos: Option<u8>,
    /// Source address to send from.
    #[arg(short = 'S', long = "source", value_name = "ADDRESS")]
    pub source: Option<IpAddr>,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Print the JSON result envelope instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

impl TraceOpts {
    /// The address family asked for, if any.
    pub fn family(&self) -> Option<Family> {
        match (self.ipv4, self.ipv6) {
            (true, _) => Some(Family::Ipv4),
            (_, true) => Some(Family::Ipv6),
            _ => None,
        }
    }
}

/// `vantage trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub opts: TraceOpts,
}

/// `vantage mtr`.
#[derive(Debug, Args)]
pub struct MtrArgs {
    /// Rounds (report cycles).
    #[arg(
        short = 'c',
        long = "count",
        value_name = "ROUNDS",
        default_value_t = 10
    )]
    pub rounds: u32,
    /// Seconds between rounds.
    #[arg(short = 'i', long = "interval", value_name = "SECONDS", default_value_t = defaults::TRACE_INTERVAL)]
    pub interval: f64,
    #[command(flatten)]
    pub opts: TraceOpts,
}

fn parse_trace_protocol(s: &str) -> Result<TraceProtocol, String> {
    match s.to_ascii_lowercase().as_str() {
        "icmp" => Ok(TraceProtocol::Icmp),
        "udp" => Ok(TraceProtocol::Udp),
        "tcp" => Ok(TraceProtocol::Tcp),
        _ => Err(format!("unknown protocol '{s}'; use icmp, udp or tcp")),
    }
}

/// Accepts decimal or `0x` hexadecimal bytes.
fn parse_u8_auto(s: &str) -> Result<u8, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => s.parse::<u8>(),
    };
    parsed.map_err(|_| format!("'{s}' is not a byte value (0–255 or 0x00–0xff)"))
}

/// `-4` / `-6` for subcommands that take no other common probe option.
#[derive(Debug, Args)]
pub struct FamilyArgs {
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
}

impl FamilyArgs {
    /// The address family asked for, if any.
    pub fn family(&self) -> Option<Family> {
        match (self.ipv4, self.ipv6) {
            (true, _) => Some(Family::Ipv4),
            (_, true) => Some(Family::Ipv6),
            _ => None,
        }
    }
}

/// `vantage dns`.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// The name to query, optionally followed by a record type, and any number of @SERVER
    /// arguments (IP, IP:PORT, [IPv6]:PORT or a host name), in any order, as with dig.
    #[arg(value_name = "NAME [TYPE] [@SERVER]", required = true)]
    pub args: Vec<String>,
    /// Record type: a mnemonic (A, AAAA, MX, TXT, SOA …), TYPE65 or 65.
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    pub qtype: Option<String>,
    /// Port of servers given without one.
    #[arg(short = 'p', long = "port", default_value_t = defaults::DNS_PORT)]
    pub port: u16,
    /// Query over TCP only (UDP answers that come back truncated are retried over TCP anyway).
    #[arg(long)]
    pub tcp: bool,
    /// Clear the RD (recursion desired) flag.
    #[arg(long)]
    pub norecurse: bool,
    /// Set the EDNS DO bit to ask for DNSSEC records (EDNS size 1232 unless --edns-size).
    #[arg(long)]
    pub dnssec: bool,
    /// Advertise this EDNS UDP payload size (no EDNS unless given or --dnssec).
    #[arg(long, value_name = "BYTES")]
    pub edns_size: Option<u16>,
    /// Seconds to wait for each answer.
    #[arg(short = 'W', long = "timeout", default_value_t = defaults::DNS_TIMEOUT)]
    pub timeout: f64,
    /// Retries after a timeout.
    #[arg(long, default_value_t = defaults::DNS_RETRIES)]
    pub retries: u8,
    /// Allow servers at loopback, private and other non-global addresses.
    #[arg(long)]
    pub allow_private: bool,
    /// Address family of server names and system resolvers.
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Print the JSON result envelope instead of dig-style text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `vantage http`.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// The http:// or https:// URL to request.
    #[arg(value_name = "URL")]
    pub url: String,
    /// Request method: GET or HEAD.
    #[arg(
        short = 'X',
        long = "request",
        value_name = "METHOD",
        default_value = "GET"
    )]
    pub method: String,
    /// Send HEAD (same as -X HEAD).
    #[arg(short = 'I', long = "head")]
    pub head: bool,
    /// Connect to HOST:PORT instead of the URL's host, which stays the Host header and TLS name.
    #[arg(long = "connect-to", value_name = "HOST:PORT")]
    pub connect_to: Option<String>,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Offer HTTP/2 through ALPN (prior knowledge for http:// URLs).
    #[arg(long)]
    pub http2: bool,
    /// Follow redirects, timing every hop.
    #[arg(short = 'L', long = "follow")]
    pub follow: bool,
    /// Most redirects to follow.
    #[arg(long, default_value_t = defaults::HTTP_MAX_REDIRECTS, value_name = "N")]
    pub max_redirects: u8,
    /// Download the body and report its size and throughput (default: stop after the headers).
    #[arg(long)]
    pub body: bool,
    /// Largest body to download, in bytes.
    #[arg(long = "max-body", default_value_t = defaults::HTTP_BODY_LIMIT, value_name = "BYTES")]
    pub max_body: u64,
    /// Do not fail on certificate errors (verification is still done and reported).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file as well as the system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Allow loopback, private and other non-global destinations.
    #[arg(long)]
    pub allow_private: bool,
    /// Seconds the whole request may take (each redirect hop gets its own).
    #[arg(short = 'W', long = "timeout", default_value_t = defaults::HTTP_TIMEOUT)]
    pub timeout: f64,
    /// Address family to resolve the host to.
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Print the JSON result envelope instead of the report.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Conflicts name arguments of flattened groups (`--from`); clap checks they exist.
        Cli::command().debug_assert();
    }

    #[test]
    fn deferred_subcommands_keep_their_description_and_get_their_arguments() {
        let mut cli = Cli::command();
        // Before clap builds a subcommand it has its description but not yet its arguments.
        let trace = cli.find_subcommand("trace").expect("trace");
        assert!(trace.get_arguments().all(|a| a.get_id() != "max_ttl"));
        cli.build();
        for sub in cli.get_subcommands() {
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            assert!(
                !about.is_empty() && !about.starts_with('`'),
                "{}: the description is the variant's one-line summary, got {about:?}",
                sub.get_name()
            );
        }
        let trace = cli.find_subcommand("trace").expect("trace");
        assert!(trace.get_arguments().any(|a| a.get_id() == "max_ttl"));
        assert!(
            trace
                .get_after_help()
                .is_some_and(|h| h.to_string().contains("Examples"))
        );
        // Parsing goes through the deferred definition.
        let parsed = Cli::try_parse_from(["vantage", "trace", "-m", "12", "-q", "1", "192.0.2.1"])
            .expect("parses");
        let super::Command::Trace(t) = parsed.command else {
            panic!("not a trace")
        };
        assert_eq!((t.0.opts.max_ttl, t.0.opts.probes), (12, Some(1)));
    }
}
