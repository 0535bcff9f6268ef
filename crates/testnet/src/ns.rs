//! Network namespaces: creating and deleting them, and running commands, closures and async
//! code inside one.
//!
//! Decisions:
//! - Namespaces are named `vt-<pid>-<topology>-…` and registered with `ip netns`, so they show
//!   up in `ip netns list` while a test runs, can be entered by hand for debugging, and
//!   [`cleanup_stale`] can recognise the leftovers of a test process that was killed (its pid
//!   is dead) without touching anything else.
//! - Code runs inside a namespace on a dedicated thread that `setns()`s into it: sockets are
//!   bound to the namespace of the thread that opens them, so the test process itself keeps its
//!   own namespace and any number of namespaces can be used at once.
//! - The unprivileged helpers really become uid/gid 65534 without capabilities (per thread, or
//!   through `setpriv` for commands), so tests of the "no `CAP_NET_RAW`" path exercise the same
//!   kernel checks as a normal user.

use std::ffi::OsStr;
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::error::{Error, Result};

/// Directory where `ip netns` keeps its namespace handles.
const NETNS_DIR: &str = "/run/netns";
/// Prefix of every namespace this crate creates.
pub(crate) const PREFIX: &str = "vt-";
/// The uid and gid of `nobody`, used by the unprivileged helpers.
pub const NOBODY: u32 = 65534;
/// `net.ipv4.ping_group_range` value that lets every group open ICMP datagram sockets.
pub const PING_GROUP_ALL: (u32, u32) = (0, 2_147_483_647);

/// A network namespace of a topology (a node or a wire). Cheap to clone; it does not own the
/// namespace: the [`Topology`](crate::Topology) deletes it when dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ns {
    name: String,
}

impl Ns {
    pub(crate) fn new(name: String) -> Self {
        Ns { name }
    }

    /// The name under which `ip netns` knows it (`ip netns exec NAME …`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace handle, usable with `nsenter --net=PATH` or `setns`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// A [`Command`] for `program` running inside the namespace (through `ip netns exec`),
    /// as root. Processes still running in the namespace are killed when the topology drops.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// A [`Command`] for `program` running inside the namespace as uid/gid 65534 (`nobody`)
    /// with no capabilities at all (`setpriv`, bounding set emptied). The kernel refuses to
    /// execute a binary that carries file capabilities under an empty bounding set (Debian's
    /// `ping` has `cap_net_raw=ep`): run a copy of it instead (copying drops file
    /// capabilities), placed in a directory `nobody` can read.
    pub fn command_unprivileged(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        let id = NOBODY.to_string();
        c.args(["netns", "exec", &self.name, "setpriv"])
            .arg(format!("--reuid={id}"))
            .arg(format!("--regid={id}"))
            .args([
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ])
            .arg(program);
        c
    }

    /// Runs `f` on a thread that has entered the namespace, and returns its result. Sockets
    /// `f` opens belong to the namespace; threads it spawns start inside it too. A panic in `f`
    /// is resumed on the caller's thread.
    pub fn run<R, F>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        self.try_run(None, f)
            .unwrap_or_else(|e| panic!("cannot run code in namespace {}: {e}", self.name))
    }

    /// Like [`run`](Self::run), but the thread first becomes uid/gid 65534 without any
    /// capability (no `CAP_NET_RAW`): the unprivileged path of a probe, exactly as a normal
    /// user would run it. Only that thread (and threads it starts) is affected.
    pub fn run_unprivileged<R, F>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        self.try_run(Some((NOBODY, NOBODY)), f)
            .unwrap_or_else(|e| panic!("cannot run code in namespace {}: {e}", self.name))
    }

    /// Runs a future to completion on a current-thread tokio runtime whose thread has entered
    /// the namespace (timers and I/O enabled). Sockets opened by the future belong to the
    /// namespace.
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        self.run(|| runtime().block_on(fut))
    }

    /// [`block_on`](Self::block_on) as uid/gid 65534 without capabilities.
    pub fn block_on_unprivileged<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        self.run_unprivileged(|| runtime().block_on(fut))
    }

    fn try_run<R, F>(&self, creds: Option<(u32, u32)>, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let handle = File::open(self.path())
            .map_err(|e| Error::io(format!("cannot open namespace {}", self.name), e))?;
        let outcome = std::thread::scope(|s| {
            s.spawn(move || -> Result<R> {
                enter(&handle, &self.name)?;
                if let Some((uid, gid)) = creds {
                    crate::sys::drop_thread_privileges(uid, gid)
                        .map_err(|e| Error::io(format!("cannot become uid {uid}/gid {gid}"), e))?;
                }
                Ok(f())
            })
            .join()
        });
        match outcome {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Sets a sysctl of the namespace, e.g. `("net.ipv4.ping_group_range", "0 2147483647")`.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = sysctl_path(key)?;
        self.try_run(None, || std::fs::write(&path, value))?
            .map_err(|e| Error::io(format!("cannot set {key}={value} in {}", self.name), e))
    }

    /// Reads a sysctl of the namespace (trimmed).
    pub fn sysctl(&self, key: &str) -> Result<String> {
        let path = sysctl_path(key)?;
        self.try_run(None, || std::fs::read_to_string(&path))?
            .map(|s| s.trim().to_string())
            .map_err(|e| Error::io(format!("cannot read {key} in {}", self.name), e))
    }

    /// Sets `net.ipv4.ping_group_range` (which also governs ICMPv6 datagram sockets). A new
    /// namespace starts with `1 0`, which forbids unprivileged ICMP sockets even to root.
    pub fn set_ping_group_range(&self, low: u32, high: u32) -> Result<()> {
        self.set_sysctl("net.ipv4.ping_group_range", &format!("{low} {high}"))
    }

    /// Lets every user open unprivileged ICMP (datagram) sockets: `ping_group_range 0 2147483647`.
    pub fn allow_unprivileged_ping(&self) -> Result<()> {
        self.set_ping_group_range(PING_GROUP_ALL.0, PING_GROUP_ALL.1)
    }

    /// Runs `ip -n NAME args…` and returns its output, e.g. `ns.ip(&["route"])`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        cmd::ip(&all)
    }

    /// Pids of the processes whose network namespace is this one (never our own process).
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.path())
    }

    /// Kills (SIGKILL) every process inside the namespace and reaps nothing: the processes are
    /// the children of whoever started them.
    pub fn kill_processes(&self) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime can always be built")
}

fn enter(handle: &File, name: &str) -> Result<()> {
    nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::io(format!("cannot enter namespace {name} (setns)"), e))
}

fn sysctl_path(key: &str) -> Result<PathBuf> {
    if key.is_empty()
        || key.starts_with('.')
        || key.contains("..")
        || key.contains('/')
        || !key.starts_with("net.")
    {
        return Err(Error::Invalid(format!(
            "'{key}' is not a network sysctl (it must look like net.ipv4.ip_forward)"
        )));
    }
    Ok(Path::new("/proc/sys").join(key.replace('.', "/")))
}

/// Deletes a namespace after killing the processes inside it. Errors are ignored: this runs
/// in `Drop`, and a namespace that is already gone is what we want.
pub(crate) fn destroy(ns: &Ns) {
    ns.kill_processes();
    let _ = cmd::ip(&["netns", "del", &ns.name]);
}

/// The pids of processes in the namespace behind `handle`, compared by namespace inode.
fn pids_in(handle: &Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(handle) else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.ino() == target.ino() && m.dev() == target.dev())
        })
        .collect()
}

/// Deletes the namespaces left behind by test processes that died without cleaning up (killed
/// by a timeout, SIGKILL …): every `vt-<pid>-…` namespace whose pid no longer runs. Returns how
/// many were removed. [`Topology::build`](crate::TopologyBuilder::build) calls it first.
pub fn cleanup_stale() -> usize {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        destroy(&Ns::new(name));
        removed += 1;
    }
    removed
}
