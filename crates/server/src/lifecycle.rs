//! Measurement lifecycle without silent loss.
//!
//! A measurement selects agents and creates one job per agent (`queued`). A job handed to a
//! connected agent is `running`; the agent's result makes it `done` (or `failed` when the agent
//! could not run it); at the measurement's deadline every job still without a result becomes
//! `agent_lost` with a sentence saying why, and a result envelope with outcome `agent_lost` is
//! stored for it. The measurement is `finished` when all its jobs are final. A result that
//! arrives after the deadline (say, after a long link cut) is still stored and replaces
//! `agent_lost`, marked `late`: nothing measured is thrown away.
//!
//! The main decision: every status change goes through one writer task. It takes whatever has
//! queued up (results, dispatches, deadlines), writes it in one transaction, and only after the
//! commit acknowledges results to their agents, publishes events and updates the in-memory view.
//! Batching is what makes a thousand results in a second cheap on SQLite; acknowledging only after
//! the commit is what lets agents delete results from their outbox safely. On restart the server
//! reloads unfinished measurements, re-arms their deadlines and re-sends jobs agents no longer
//! hold when they reconnect.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use uuid::Uuid;
use vantage_proto::link::{Job, ServerMessage};
use vantage_proto::{MeasurementResult, MeasurementSpec, Outcome, Selector};

use crate::Error;
use crate::api::types::{AgentRef, EntryCounts, EntryView, MeasurementCreated};
use crate::app::{App, Event};
use crate::hub::LinkInfo;
use crate::model::{EntryStatus, MeasurementStatus};
use crate::store::{AgentRow, Batch, EntryRow, EntryWrite, MeasurementRow, ResultWrite};

/// Seconds an agent gets beyond the spec's own worst-case duration before it stops the probe.
pub const JOB_SLACK_SECS: f64 = 1.0;
/// Most operations written in one transaction.
const MAX_BATCH: usize = 4096;

/// Why a measurement could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The selector chose nobody.
    #[error("{0}")]
    NoAgents(String),
    /// An `msm:` atom names a measurement that does not exist.
    #[error("measurement {0} referenced by the selector does not exist")]
    UnknownMeasurement(Uuid),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// One job in memory.
#[derive(Debug, Clone)]
struct JobState {
    agent_id: Uuid,
    status: EntryStatus,
}

/// An unfinished measurement in memory.
#[derive(Debug)]
struct Active {
    spec: MeasurementSpec,
    created_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    /// The agent's own hard deadline for a job, in ms from receipt.
    job_timeout_ms: u64,
    jobs: HashMap<Uuid, JobState>,
    agents: HashMap<Uuid, AgentRef>,
}

#[derive(Debug, Default)]
struct State {
    active: HashMap<Uuid, Active>,
    /// job id → measurement id, for active measurements.
    jobs: HashMap<Uuid, Uuid>,
}

/// Work for the writer.
#[derive(Debug)]
enum Op {
    /// A result from an agent; acknowledged on this sender after it is stored.
    Result {
        agent_id: Uuid,
        job_id: Uuid,
        result: Box<MeasurementResult>,
        reply: mpsc::Sender<ServerMessage>,
    },
    /// Jobs handed to their agents.
    Dispatched(Vec<Uuid>),
    /// A measurement's deadline passed.
    Expire(Uuid),
}

/// Owns the lifecycle of measurements.
#[derive(Debug)]
pub struct Coordinator {
    state: Mutex<State>,
    tx: mpsc::Sender<Op>,
    rx: Mutex<Option<mpsc::Receiver<Op>>>,
}

impl Default for Coordinator {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn agent_ref(a: &AgentRow) -> AgentRef {
    AgentRef {
        id: a.id,
        name: a.name.clone(),
        country: a.country.clone(),
        city: a.city.clone(),
        region: a.region.clone(),
        asn: a.asn,
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S%.3f UTC").to_string()
}

/// The sentence that says why an agent has no result.
fn lost_reason(
    name: &str,
    status: EntryStatus,
    link: LinkInfo,
    created: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> String {
    let secs = (deadline - created).num_milliseconds() as f64 / 1000.0;
    match (status, link.connected_since, link.disconnected_at) {
        (_, Some(_), _) => format!(
            "agent {name} is connected but returned no result within the deadline of {secs:.1} s"
        ),
        (EntryStatus::Queued, None, Some(at)) if at <= created => format!(
            "agent {name} was disconnected since {} and did not come back within the deadline of {secs:.1} s, so it never received the job",
            fmt_time(at)
        ),
        (EntryStatus::Queued, None, _) => format!(
            "agent {name} was not connected and never received the job within the deadline of {secs:.1} s"
        ),
        (_, None, Some(at)) => format!(
            "agent {name} disconnected at {} and did not deliver a result within the deadline of {secs:.1} s",
            fmt_time(at)
        ),
        (_, None, None) => format!(
            "agent {name} was not connected at the deadline ({secs:.1} s after the start; the server restarted meanwhile) and delivered no result"
        ),
    }
}

impl Coordinator {
    /// A coordinator whose writer is not yet started.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel(65536);
        Coordinator {
            state: Mutex::new(State::default()),
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the writer task (once).
    pub(crate) fn start_writer(app: &Arc<App>) -> Option<tokio::task::JoinHandle<()>> {
        let rx = app
            .coord
            .rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let app = app.clone();
        Some(tokio::spawn(writer(app, rx)))
    }

    fn register(&self, app: &Arc<App>, id: Uuid, active: Active) {
        let deadline = active.deadline;
        {
            let mut s = self.lock();
            for job in active.jobs.keys() {
                s.jobs.insert(*job, id);
            }
            s.active.insert(id, active);
        }
        let tx = self.tx.clone();
        let wait = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let stop = app.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(wait) => { let _ = tx.send(Op::Expire(id)).await; }
                _ = stop.cancelled() => {}
            }
        });
    }

    /// Creates a measurement: selects connected agents, stores it with one job each, and hands
    /// the jobs out.
    pub async fn create(
        app: &Arc<App>,
        spec: MeasurementSpec,
        selector_text: &str,
        selector: &Selector,
        created_by: Option<Uuid>,
    ) -> Result<MeasurementCreated, CreateError> {
        let refs = selector.measurement_refs();
        let msm = app.store.measurement_agents(&refs).await?;
        if let Some(missing) = refs.iter().find(|r| !msm.contains_key(r)) {
            return Err(CreateError::UnknownMeasurement(*missing));
        }
        let mut candidates = app.hub.online();
        // Shuffled so that limits spread load over equivalent agents across measurements.
        {
            use rand::seq::SliceRandom;
            candidates.shuffle(&mut rand::rng());
        }
        let selection = selector.select(&candidates, &msm);
        if selection.agents.is_empty() {
            let online = candidates.len();
            return Err(CreateError::NoAgents(if online == 0 {
                "no agent is connected, so no agent can run the measurement".to_string()
            } else {
                format!(
                    "the selector '{selector_text}' matches none of the {online} connected agents"
                )
            }));
        }
        let facts: HashMap<Uuid, _> = candidates.into_iter().map(|f| (f.id, f)).collect();
        let now = Utc::now();
        let id = Uuid::now_v7();
        let job_timeout = spec.max_duration() + JOB_SLACK_SECS;
        let job_timeout_ms = (job_timeout * 1000.0).ceil() as u64;
        let deadline = now
            + chrono::Duration::milliseconds(job_timeout_ms as i64)
            + chrono::Duration::milliseconds((app.config.result_grace * 1000.0) as i64);
        let mut entries = Vec::with_capacity(selection.agents.len());
        let mut agents = HashMap::new();
        let mut refs_out = Vec::with_capacity(selection.agents.len());
        for agent_id in &selection.agents {
            let f = &facts[agent_id];
            let r = AgentRef {
                id: f.id,
                name: f.name.clone(),
                country: f.country.clone(),
                city: f.city.clone(),
                region: f.region.clone(),
                asn: f.asn,
            };
            refs_out.push(r.clone());
            agents.insert(*agent_id, r);
            entries.push(EntryRow {
                job_id: Uuid::now_v7(),
                measurement_id: id,
                agent_id: *agent_id,
                status: EntryStatus::Queued,
                result_id: None,
                reason: None,
                late: false,
                updated_at: now,
            });
        }
        let row = MeasurementRow {
            id,
            spec: spec.clone(),
            selector: selector_text.to_string(),
            status: MeasurementStatus::Running,
            created_at: now,
            deadline,
            finished_at: None,
            created_by: created_by.map(|u| u.to_string()),
        };
        app.store.insert_measurement(&row, &entries).await?;
        app.metrics.measurement_created();
        let jobs = entries
            .iter()
            .map(|e| {
                (
                    e.job_id,
                    JobState {
                        agent_id: e.agent_id,
                        status: EntryStatus::Queued,
                    },
                )
            })
            .collect();
        app.coord.register(
            app,
            id,
            Active {
                spec: spec.clone(),
                created_at: now,
                deadline,
                job_timeout_ms,
                jobs,
                agents,
            },
        );
        let mut sent = Vec::with_capacity(entries.len());
        for e in &entries {
            let job = Job {
                job_id: e.job_id,
                measurement_id: id,
                spec: spec.clone(),
                timeout_ms: job_timeout_ms,
            };
            if app.hub.send(e.agent_id, ServerMessage::Job(job)) {
                sent.push(e.job_id);
            }
        }
        if !sent.is_empty() {
            let _ = app.coord.tx.send(Op::Dispatched(sent)).await;
        }
        Ok(MeasurementCreated {
            id,
            status: MeasurementStatus::Running,
            agents: refs_out,
            unmatched: selection.unmatched,
            deadline,
        })
    }

    /// Jobs an agent should run that it does not hold (after it (re)connects), with their
    /// remaining time. Jobs with less than half a second left are not sent.
    pub(crate) fn pending_for(&self, agent_id: Uuid, held: &HashSet<Uuid>, grace: f64) -> Vec<Job> {
        let now = Utc::now();
        let s = self.lock();
        let mut out = Vec::new();
        for (mid, m) in &s.active {
            for (job_id, j) in &m.jobs {
                if j.agent_id != agent_id || j.status.is_final() || held.contains(job_id) {
                    continue;
                }
                let left_ms = (m.deadline - now).num_milliseconds() - (grace * 1000.0) as i64;
                if left_ms < 500 {
                    continue;
                }
                out.push(Job {
                    job_id: *job_id,
                    measurement_id: *mid,
                    spec: m.spec.clone(),
                    timeout_ms: m.job_timeout_ms.min(left_ms as u64),
                });
            }
        }
        out
    }

    /// Notes jobs handed to an agent.
    pub(crate) async fn dispatched(&self, jobs: Vec<Uuid>) {
        if !jobs.is_empty() {
            let _ = self.tx.send(Op::Dispatched(jobs)).await;
        }
    }

    /// Queues an agent's result for storage; it is acknowledged on `reply` once stored.
    pub(crate) async fn result(
        &self,
        agent_id: Uuid,
        job_id: Uuid,
        result: Box<MeasurementResult>,
        reply: mpsc::Sender<ServerMessage>,
    ) {
        let _ = self
            .tx
            .send(Op::Result {
                agent_id,
                job_id,
                result,
                reply,
            })
            .await;
    }

    /// Reloads unfinished measurements after a start; those past their deadline are expired
    /// at once.
    pub(crate) async fn recover(app: &Arc<App>) -> Result<usize, Error> {
        let unfinished = app.store.unfinished().await?;
        if unfinished.is_empty() {
            return Ok(0);
        }
        let agents: HashMap<Uuid, AgentRow> = app
            .store
            .agents()
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        let n = unfinished.len();
        for (m, entries) in unfinished {
            let job_timeout_ms = ((m.spec.max_duration() + JOB_SLACK_SECS) * 1000.0).ceil() as u64;
            let active = Active {
                spec: m.spec.clone(),
                created_at: m.created_at,
                deadline: m.deadline,
                job_timeout_ms,
                jobs: entries
                    .iter()
                    .map(|e| {
                        (
                            e.job_id,
                            JobState {
                                agent_id: e.agent_id,
                                status: e.status,
                            },
                        )
                    })
                    .collect(),
                agents: entries
                    .iter()
                    .filter_map(|e| agents.get(&e.agent_id).map(|a| (a.id, agent_ref(a))))
                    .collect(),
            };
            app.coord.register(app, m.id, active);
        }
        Ok(n)
    }
}

/// The writer: drains queued operations and applies them in batches.
async fn writer(app: Arc<App>, mut rx: mpsc::Receiver<Op>) {
    loop {
        let first = tokio::select! {
            op = rx.recv() => match op {
                Some(op) => op,
                None => break,
            },
            // Stopping: store what already arrived, then end.
            _ = app.shutdown.cancelled() => match rx.try_recv() {
                Ok(op) => op,
                Err(_) => break,
            },
        };
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        process(&app, ops).await;
    }
}

/// What one batch will change in memory once committed.
#[derive(Default)]
struct Plan {
    batch: Batch,
    /// (measurement, job, new status)
    changes: Vec<(Uuid, Uuid, EntryStatus)>,
    events: Vec<Event>,
    acks: HashMap<Uuid, (mpsc::Sender<ServerMessage>, Vec<Uuid>)>,
    late: u64,
}

async fn process(app: &Arc<App>, ops: Vec<Op>) {
    let mut plan = Plan::default();
    let mut inactive: Vec<(Uuid, Uuid, Box<MeasurementResult>)> = Vec::new();
    {
        let s = app.coord.lock();
        // Status of each job as this batch leaves it, so duplicates within a batch are seen.
        let mut planned: HashMap<Uuid, EntryStatus> = HashMap::new();
        let mut finishing: HashSet<Uuid> = HashSet::new();
        for op in ops {
            match op {
                Op::Dispatched(jobs) => {
                    for j in jobs {
                        let Some(mid) = s.jobs.get(&j) else { continue };
                        let cur = planned
                            .get(&j)
                            .copied()
                            .or_else(|| s.active[mid].jobs.get(&j).map(|x| x.status));
                        if cur == Some(EntryStatus::Queued) {
                            planned.insert(j, EntryStatus::Running);
                            plan.changes.push((*mid, j, EntryStatus::Running));
                            plan.batch.dispatched.push(j);
                        }
                    }
                }
                Op::Result {
                    agent_id,
                    job_id,
                    mut result,
                    reply,
                } => {
                    let ack = plan
                        .acks
                        .entry(agent_id)
                        .or_insert_with(|| (reply.clone(), Vec::new()));
                    ack.0 = reply;
                    ack.1.push(result.id);
                    let Some(mid) = s.jobs.get(&job_id).copied() else {
                        inactive.push((agent_id, job_id, result));
                        continue;
                    };
                    let m = &s.active[&mid];
                    let job = &m.jobs[&job_id];
                    if job.agent_id != agent_id {
                        tracing::warn!(agent = %agent_id, job = %job_id, "agent sent a result for another agent's job; ignored");
                        continue;
                    }
                    let cur = planned.get(&job_id).copied().unwrap_or(job.status);
                    if cur.is_final() {
                        continue; // a re-send, or a second result: the first one stands
                    }
                    result.measurement_id = Some(mid);
                    result.agent = Some(agent_id.to_string());
                    let status = if result.outcome == Outcome::Internal {
                        EntryStatus::Failed
                    } else {
                        EntryStatus::Done
                    };
                    planned.insert(job_id, status);
                    plan.changes.push((mid, job_id, status));
                    plan.batch.entries.push(EntryWrite {
                        job_id,
                        status,
                        result_id: Some(result.id),
                        reason: None,
                        late: false,
                    });
                    plan.events.push(Event::Entry {
                        measurement_id: mid,
                        entry: Box::new(EntryView {
                            agent: m.agents.get(&agent_id).cloned().unwrap_or(AgentRef {
                                id: agent_id,
                                name: agent_id.to_string(),
                                country: None,
                                city: None,
                                region: None,
                                asn: None,
                            }),
                            status,
                            reason: None,
                            late: false,
                            result: Some((*result).clone()),
                        }),
                    });
                    plan.batch.results.push(ResultWrite {
                        job_id,
                        agent_id,
                        measurement_id: mid,
                        result: *result,
                    });
                    let done = m
                        .jobs
                        .iter()
                        .all(|(j, st)| planned.get(j).copied().unwrap_or(st.status).is_final());
                    if done && finishing.insert(mid) {
                        plan.batch.finished.push(mid);
                    }
                }
                Op::Expire(mid) => {
                    let Some(m) = s.active.get(&mid) else {
                        continue;
                    };
                    for (job_id, job) in &m.jobs {
                        let cur = planned.get(job_id).copied().unwrap_or(job.status);
                        if cur.is_final() {
                            continue;
                        }
                        let agent = m.agents.get(&job.agent_id).cloned().unwrap_or(AgentRef {
                            id: job.agent_id,
                            name: job.agent_id.to_string(),
                            country: None,
                            city: None,
                            region: None,
                            asn: None,
                        });
                        let reason = lost_reason(
                            &agent.name,
                            cur,
                            app.hub.link(job.agent_id),
                            m.created_at,
                            m.deadline,
                        );
                        let mut r = MeasurementResult::failure(
                            m.spec.kind(),
                            m.spec.target(),
                            Outcome::AgentLost,
                            reason.clone(),
                        );
                        r.measurement_id = Some(mid);
                        r.agent = Some(job.agent_id.to_string());
                        r.started_at = m.created_at;
                        r.duration_ms = (m.deadline - m.created_at).num_milliseconds() as f64;
                        planned.insert(*job_id, EntryStatus::AgentLost);
                        plan.changes.push((mid, *job_id, EntryStatus::AgentLost));
                        plan.batch.entries.push(EntryWrite {
                            job_id: *job_id,
                            status: EntryStatus::AgentLost,
                            result_id: Some(r.id),
                            reason: Some(reason.clone()),
                            late: false,
                        });
                        plan.events.push(Event::Entry {
                            measurement_id: mid,
                            entry: Box::new(EntryView {
                                agent,
                                status: EntryStatus::AgentLost,
                                reason: Some(reason),
                                late: false,
                                result: Some(r.clone()),
                            }),
                        });
                        plan.batch.results.push(ResultWrite {
                            job_id: *job_id,
                            agent_id: job.agent_id,
                            measurement_id: mid,
                            result: r,
                        });
                    }
                    if finishing.insert(mid) {
                        plan.batch.finished.push(mid);
                    }
                }
            }
        }
    }
    for (agent_id, job_id, result) in inactive {
        if let Err(e) = plan_late(app, &mut plan, agent_id, job_id, result).await {
            tracing::error!("cannot check a result for an inactive job: {e}");
        }
    }
    if !plan.batch.is_empty() && !commit(app, &plan.batch).await {
        // Not stored: close the sessions involved so their agents re-send after reconnecting.
        for agent in plan.acks.keys() {
            app.hub.disconnect(*agent);
        }
        return;
    }
    // Committed: now memory, acknowledgements, metrics and events follow.
    let mut finished_counts = Vec::new();
    {
        let mut s = app.coord.lock();
        for (mid, job, status) in &plan.changes {
            if let Some(j) = s.active.get_mut(mid).and_then(|m| m.jobs.get_mut(job)) {
                j.status = *status;
            }
        }
        for mid in &plan.batch.finished {
            if let Some(m) = s.active.remove(mid) {
                let mut counts = EntryCounts::default();
                for (job, st) in &m.jobs {
                    counts.add(st.status);
                    s.jobs.remove(job);
                }
                finished_counts.push((*mid, counts));
            }
        }
    }
    for (_, _, status) in &plan.changes {
        if status.is_final() {
            app.metrics.job_final(*status);
        }
    }
    app.metrics
        .results_stored(plan.batch.results.len() as u64, plan.late);
    for (_, (tx, ids)) in plan.acks {
        let _ = tx.try_send(ServerMessage::Ack { result_ids: ids });
    }
    for e in plan.events {
        app.publish(e);
    }
    for (mid, counts) in finished_counts {
        app.metrics.measurement_finished();
        app.publish(Event::Finished {
            measurement_id: mid,
            counts,
        });
    }
}

/// A result for a job that is not active: a late result replaces `agent_lost`; anything else
/// (a re-send of a stored result, an unknown job) is only acknowledged.
async fn plan_late(
    app: &Arc<App>,
    plan: &mut Plan,
    agent_id: Uuid,
    job_id: Uuid,
    mut result: Box<MeasurementResult>,
) -> Result<(), Error> {
    let Some(entry) = app.store.entry(job_id).await? else {
        tracing::warn!(agent = %agent_id, job = %job_id, "result for an unknown job; acknowledged and dropped");
        return Ok(());
    };
    if entry.agent_id != agent_id || entry.status != EntryStatus::AgentLost {
        return Ok(());
    }
    if plan.batch.entries.iter().any(|e| e.job_id == job_id) {
        return Ok(());
    }
    let status = if result.outcome == Outcome::Internal {
        EntryStatus::Failed
    } else {
        EntryStatus::Done
    };
    result.measurement_id = Some(entry.measurement_id);
    result.agent = Some(agent_id.to_string());
    let agent = match app.store.agent(agent_id).await? {
        Some(a) => agent_ref(&a),
        None => AgentRef {
            id: agent_id,
            name: agent_id.to_string(),
            country: None,
            city: None,
            region: None,
            asn: None,
        },
    };
    plan.batch.entries.push(EntryWrite {
        job_id,
        status,
        result_id: Some(result.id),
        reason: None,
        late: true,
    });
    plan.events.push(Event::Entry {
        measurement_id: entry.measurement_id,
        entry: Box::new(EntryView {
            agent,
            status,
            reason: None,
            late: true,
            result: Some((*result).clone()),
        }),
    });
    plan.batch.results.push(ResultWrite {
        job_id,
        agent_id,
        measurement_id: entry.measurement_id,
        result: *result,
    });
    plan.late += 1;
    Ok(())
}

/// Commits a batch, retrying a few times; false when it could not be stored.
async fn commit(app: &Arc<App>, batch: &Batch) -> bool {
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=4 {
        let t0 = Instant::now();
        match app.store.apply(batch).await {
            Ok(()) => {
                app.metrics.write_took(t0.elapsed().as_secs_f64());
                return true;
            }
            Err(e) if attempt < 4 => {
                tracing::warn!("storing results failed (attempt {attempt}), retrying: {e}");
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
            Err(e) => {
                tracing::error!(
                    "storing results failed; their agents will re-send them after reconnecting: {e}"
                );
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_sentences_say_what_happened() {
        let created = Utc::now();
        let deadline = created + chrono::Duration::seconds(12);
        let at = created + chrono::Duration::seconds(3);
        let s = lost_reason(
            "fra-1",
            EntryStatus::Running,
            LinkInfo {
                connected_since: None,
                disconnected_at: Some(at),
                last_seen: None,
            },
            created,
            deadline,
        );
        assert!(s.contains("fra-1 disconnected at"), "{s}");
        assert!(s.contains("12.0 s"), "{s}");
        let s = lost_reason(
            "fra-1",
            EntryStatus::Running,
            LinkInfo {
                connected_since: Some(created),
                ..Default::default()
            },
            created,
            deadline,
        );
        assert!(s.contains("is connected but returned no result"), "{s}");
        let s = lost_reason(
            "fra-1",
            EntryStatus::Queued,
            LinkInfo::default(),
            created,
            deadline,
        );
        assert!(s.contains("never received the job"), "{s}");
    }
}
