//! Running jobs: each job runs once, in its own task, under its hard deadline, and its result goes
//! to the outbox. Jobs outlive the link: a job started before a disconnect finishes and its
//! result waits in the outbox for the next session.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vantage_probe::{Context, Privilege};
use vantage_proto::link::Job;
use vantage_proto::{MeasurementResult, Outcome};

use crate::outbox::Outbox;

/// How many finished job ids are remembered to ignore a job sent twice.
const RECENT: usize = 10_000;
/// How long a probe may take to return what it has after its deadline cancelled it.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct State {
    running: HashMap<Uuid, CancellationToken>,
    recent: VecDeque<Uuid>,
    recent_set: HashSet<Uuid>,
}

/// The jobs of one agent.
#[derive(Debug)]
pub struct Jobs {
    agent_id: Uuid,
    privilege: Privilege,
    allow_private: bool,
    outbox: Arc<Outbox>,
    state: Mutex<State>,
    tasks: tokio_util::task::TaskTracker,
}

impl Jobs {
    /// Jobs writing their results to `outbox`.
    pub fn new(
        agent_id: Uuid,
        privilege: Privilege,
        allow_private: bool,
        outbox: Arc<Outbox>,
    ) -> Self {
        Jobs {
            agent_id,
            privilege,
            allow_private,
            outbox,
            state: Mutex::new(State::default()),
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Jobs running now or with a result not yet acknowledged.
    pub fn held(&self) -> Vec<Uuid> {
        let mut v: Vec<Uuid> = self.lock().running.keys().copied().collect();
        v.extend(self.outbox.jobs());
        v.sort();
        v.dedup();
        v
    }

    /// Starts a job unless it is running, finished recently or has a result waiting.
    pub fn start(self: &Arc<Self>, job: Job) {
        let token = CancellationToken::new();
        {
            let mut st = self.lock();
            if st.running.contains_key(&job.job_id)
                || st.recent_set.contains(&job.job_id)
                || self.outbox.holds_job(job.job_id)
            {
                tracing::debug!(job = %job.job_id, "job already held; ignored");
                return;
            }
            st.running.insert(job.job_id, token.clone());
        }
        let me = self.clone();
        self.tasks.spawn(async move {
            let result = me.execute(&job, token).await;
            if let Err(e) = me.outbox.put(job.job_id, result).await {
                tracing::error!("{e}");
            }
            let mut st = me.lock();
            st.running.remove(&job.job_id);
            st.recent.push_back(job.job_id);
            st.recent_set.insert(job.job_id);
            if st.recent.len() > RECENT
                && let Some(old) = st.recent.pop_front()
            {
                st.recent_set.remove(&old);
            }
        });
    }

    async fn execute(&self, job: &Job, token: CancellationToken) -> MeasurementResult {
        let cx = Context {
            privilege: self.privilege,
            allow_private: self.allow_private,
            rate: 0,
            cancel: token.clone(),
        };
        let deadline = Duration::from_millis(job.timeout_ms);
        let probe = vantage_probe::run(&job.spec, &cx);
        tokio::pin!(probe);
        let mut result = tokio::select! {
            r = &mut probe => r,
            _ = tokio::time::sleep(deadline) => {
                token.cancel();
                match tokio::time::timeout(CANCEL_GRACE, &mut probe).await {
                    Ok(mut r) => {
                        r.quality.notes.push(format!(
                            "stopped at the job's hard deadline of {:.1} s",
                            deadline.as_secs_f64()
                        ));
                        r
                    }
                    Err(_) => MeasurementResult::failure(
                        job.spec.kind(),
                        job.spec.target(),
                        Outcome::Cancelled,
                        format!(
                            "the agent stopped the measurement at its hard deadline of {:.1} s and the probe returned nothing",
                            deadline.as_secs_f64()
                        ),
                    ),
                }
            }
            _ = token.cancelled() => {
                match tokio::time::timeout(CANCEL_GRACE, &mut probe).await {
                    Ok(r) => r,
                    Err(_) => MeasurementResult::failure(
                        job.spec.kind(),
                        job.spec.target(),
                        Outcome::Cancelled,
                        "the measurement was cancelled before it finished",
                    ),
                }
            }
        };
        result.measurement_id = Some(job.measurement_id);
        result.agent = Some(self.agent_id.to_string());
        result
    }

    /// Cancels one job (it still reports what it measured).
    pub fn cancel(&self, job: Uuid) {
        if let Some(t) = self.lock().running.get(&job) {
            t.cancel();
        }
    }

    /// Cancels every job and waits (bounded) for their results to reach the outbox.
    pub async fn stop(&self, wait: Duration) {
        for t in self.lock().running.values() {
            t.cancel();
        }
        self.tasks.close();
        let _ = tokio::time::timeout(wait, self.tasks.wait()).await;
    }
}
