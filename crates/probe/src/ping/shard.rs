//! One shard: one socket, its plan, and one task that both sends and receives, so the probe
//! table has a single owner and needs no lock. While probes are due the task alternates a send
//! batch with a drain of both queues; otherwise it sleeps until the next due time, a readable
//! socket, the last timeout, or cancellation. The socket stays off the reactor until the task
//! first waits ([`Socket::park`]): a sweep's burst then costs the kernel no wake-ups.

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::plan::Plan;
use super::recv::{Receiver, RecvLog};
use super::send::{SendLog, Sender};
use crate::sock::Socket;

/// Runs a shard to the end: every probe sent and answered, or the last timeout passed, or
/// cancelled.
pub async fn run(
    sock: Socket,
    plan: Plan,
    rate: u32,
    cancel: CancellationToken,
) -> (Plan, SendLog, RecvLog) {
    let mut sock = sock.park();
    let ident = sock.local_id().unwrap_or(plan.ident);
    let mut tx = Sender::new(&plan, rate, ident);
    let mut rx = Receiver::new(&plan, sock.mode(), ident);
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let sent = tx.send_due(&sock, &plan).await;
        if sent > 0 {
            // Takes in what the batch brought back by asking the kernel directly: waiting for
            // the reactor to learn of it would hand the task back to the runtime after every
            // batch, and the shards of a sweep would then take turns on the shared I/O driver
            // instead of running side by side. The budget still lets other tasks run now and
            // then.
            rx.drain_now(&sock, &plan);
            tokio::task::consume_budget().await;
        } else {
            rx.drain(&sock, &plan);
        }
        let all_sent = tx.done(&plan);
        if all_sent && rx.resolved() >= tx.attempted() - tx.failed() {
            break;
        }
        if sent > 0 {
            continue;
        }
        let deadline = tx.last + plan.max_timeout;
        let wake = match tx.next_due(&plan) {
            Some(due) => due,
            None => deadline,
        };
        if sock.is_parked() {
            let (s, registered) = sock.unpark();
            sock = s;
            if let Err(e) = registered {
                tracing::warn!("ping shard: cannot wait for replies: {e}");
                break;
            }
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = sock.ready() => {
                if r.is_err() {
                    break;
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if all_sent && Instant::now() >= deadline {
                    break;
                }
            }
        }
    }
    rx.drain_now(&sock, &plan);
    (plan, tx.finish(), rx.finish())
}
