//! Reverse DNS of hop addresses through the system resolver (`getnameinfo`, so `/etc/hosts`
//! and the host's resolver configuration apply, as for classic traceroute and mtr).
//!
//! Decisions: a lookup starts the moment an address first answers, on the blocking pool, so
//! names resolve while the trace runs and many resolve at once; results (names and "no name")
//! are cached for the process for [`CACHE_FOR`], so mtr rounds and repeated traces ask once; the
//! trace waits at most [`RDNS_TIMEOUT`](vantage_proto::defaults) for the stragglers after its
//! last probe and reports the rest without names rather than stall.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// How long a name (or the lack of one) is remembered.
pub(crate) const CACHE_FOR: Duration = Duration::from_secs(3600);

type Slot = Arc<OnceCell<Option<String>>>;

/// Cached lookups: address → (when started, result cell).
fn cache() -> &'static Mutex<HashMap<IpAddr, (Instant, Slot)>> {
    static CACHE: OnceLock<Mutex<HashMap<IpAddr, (Instant, Slot)>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The lookups of one trace.
#[derive(Debug, Default)]
pub(crate) struct Names {
    slots: HashMap<IpAddr, Slot>,
}

impl Names {
    /// Starts resolving `ip` unless this trace already did; never blocks.
    pub fn start(&mut self, ip: IpAddr) {
        if self.slots.contains_key(&ip) {
            return;
        }
        let slot = {
            let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match c.get(&ip) {
                Some((at, slot)) if now.duration_since(*at) < CACHE_FOR => slot.clone(),
                _ => {
                    let slot: Slot = Arc::new(OnceCell::new());
                    c.insert(ip, (now, slot.clone()));
                    let s = slot.clone();
                    tokio::spawn(async move {
                        let _ = s
                            .get_or_init(|| async move {
                                tokio::task::spawn_blocking(move || lookup(ip))
                                    .await
                                    .ok()
                                    .flatten()
                            })
                            .await;
                    });
                    slot
                }
            }
        };
        self.slots.insert(ip, slot);
    }

    /// The names found by `deadline`; addresses still resolving then are left out.
    pub async fn finish(self, deadline: tokio::time::Instant) -> HashMap<IpAddr, String> {
        let mut out = HashMap::new();
        for (ip, slot) in self.slots {
            let wait = async {
                loop {
                    if let Some(v) = slot.get() {
                        return v.clone();
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            };
            if let Ok(Some(name)) = tokio::time::timeout_at(deadline, wait).await {
                out.insert(ip, name);
            }
        }
        out
    }
}

/// One blocking reverse lookup; `None` when the address has no name or the resolver failed.
fn lookup(ip: IpAddr) -> Option<String> {
    let name = dns_lookup::lookup_addr(&ip).ok()?;
    // getnameinfo gives the address back in text when asked for a name it has not got on
    // some resolvers; that is not a name.
    (name.parse::<IpAddr>().is_err()).then(|| name.trim_end_matches('.').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_resolves_from_the_hosts_file_and_is_cached() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let mut n = Names::default();
        n.start(lo);
        let names = n
            .finish(tokio::time::Instant::now() + Duration::from_secs(5))
            .await;
        let name = names.get(&lo).expect("127.0.0.1 has a name in /etc/hosts");
        assert!(name.starts_with("localhost"), "{name}");
        let cached = cache()
            .lock()
            .unwrap()
            .get(&lo)
            .map(|(_, s)| s.get().cloned());
        assert_eq!(cached, Some(Some(Some(name.clone()))));
    }

    #[tokio::test]
    async fn names_still_resolving_at_the_deadline_are_left_out() {
        // A lookup that never completes (no query is sent: tests must not reach the outside).
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        let mut n = Names::default();
        n.slots.insert(ip, Arc::new(OnceCell::new()));
        let start = std::time::Instant::now();
        let names = n
            .finish(tokio::time::Instant::now() + Duration::from_millis(50))
            .await;
        assert!(start.elapsed() < Duration::from_millis(500));
        assert!(names.is_empty());
    }
}
