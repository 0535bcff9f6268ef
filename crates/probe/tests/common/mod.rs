//! Minimal network-namespace helpers for the engine's tests: a uniquely named namespace removed
//! on drop (also on panic), commands run inside it, and futures run on a runtime whose sockets
//! live inside it.

#![allow(dead_code)]

use std::future::Future;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace that exists while this value lives.
pub struct Netns {
    pub name: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Netns {
    /// Creates `vt-<tag>-<pid>-<n>` with loopback up and unprivileged ICMP sockets allowed.
    pub fn new(tag: &str) -> Netns {
        let ns = Netns::plain(tag);
        ns.exec("sysctl -qw net.ipv4.ping_group_range='0 2147483647'");
        ns
    }

    /// Like [`Netns::new`] but with the kernel's default `ping_group_range` ("1 0": nobody may
    /// open unprivileged ICMP sockets, root included).
    pub fn plain(tag: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("vt-{tag}-{}-{n}", std::process::id());
        sh(&format!("ip netns add {name}"));
        let ns = Netns { name };
        ns.exec("ip link set lo up");
        ns
    }

    /// Runs a shell command inside the namespace; panics with its output when it fails.
    pub fn exec(&self, cmd: &str) {
        sh(&format!("ip netns exec {} sh -c \"{}\"", self.name, cmd));
    }

    /// Runs `make()`'s future on a fresh two-thread runtime whose threads are all inside this
    /// namespace, so every socket the engine opens belongs to it.
    pub fn run<F, Fut, T>(&self, make: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path).expect("open the namespace");
            nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("enter the namespace");
            let path2 = path.clone();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .on_thread_start(move || {
                    let f = std::fs::File::open(&path2).expect("open the namespace");
                    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                        .expect("enter the namespace");
                })
                .build()
                .expect("runtime");
            rt.block_on(make())
        })
        .join()
        .expect("namespace thread panicked")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs a shell command; panics with its output when it fails.
pub fn sh(cmd: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
