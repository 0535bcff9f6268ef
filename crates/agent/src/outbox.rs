//! The on-disk outbox: every result is written here first and deleted only when the server
//! acknowledges it, so nothing is lost when the link, the server or the agent goes down.
//!
//! The main decision: one file per result (`<result id>.json`, holding the link message ready
//! to send), written to a temporary name, synced, renamed, and the directory synced. That is
//! the simplest layout that survives a crash at any instant (a file is either complete or
//! absent) and makes acknowledgement a delete. Result ids are UUID v7, so file names sort in
//! creation order and re-sends after a restart keep that order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::sync::Notify;
use uuid::Uuid;
use vantage_proto::MeasurementResult;
use vantage_proto::link::AgentMessage;

use crate::Error;

/// One stored result.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The result's id.
    pub result_id: Uuid,
    /// The job it answers.
    pub job_id: Uuid,
    /// The encoded `job_result` message.
    pub message: String,
}

#[derive(Debug, Default)]
struct State {
    /// Insertion order → entry.
    entries: BTreeMap<u64, Entry>,
    by_result: HashMap<Uuid, u64>,
    jobs: HashSet<Uuid>,
    next: u64,
}

/// Results not yet acknowledged by the server.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    fsync: bool,
    state: Mutex<State>,
    /// Signalled when a result is added.
    pub added: Notify,
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Outbox {
    /// Opens the outbox in `dir` (created if needed) and loads what it holds. Files that cannot
    /// be read are renamed to `*.bad` with a warning instead of blocking the agent.
    pub fn open(dir: &Path, fsync: bool) -> Result<Outbox, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io("read", dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        let mut st = State::default();
        for path in names {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
            match AgentMessage::decode(&text) {
                Ok(Some(AgentMessage::JobResult { job_id, result })) => {
                    let seq = st.next;
                    st.next += 1;
                    st.by_result.insert(result.id, seq);
                    st.jobs.insert(job_id);
                    st.entries.insert(
                        seq,
                        Entry {
                            result_id: result.id,
                            job_id,
                            message: text,
                        },
                    );
                }
                _ => {
                    tracing::warn!(file = %path.display(), "unreadable outbox file set aside as .bad");
                    let _ = std::fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        // Leftovers of writes interrupted by a crash.
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Outbox {
            dir: dir.to_path_buf(),
            fsync,
            state: Mutex::new(st),
            added: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path_of(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Stores a result durably, then makes it available to send.
    pub async fn put(&self, job_id: Uuid, result: MeasurementResult) -> Result<(), Error> {
        let id = result.id;
        let message = AgentMessage::JobResult {
            job_id,
            result: Box::new(result),
        }
        .encode();
        let path = self.path_of(id);
        let dir = self.dir.clone();
        let fsync = self.fsync;
        let text = message.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let tmp = path.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            if fsync {
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            if fsync {
                sync_dir(&dir)?;
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let res =
            written.map_err(|e| Error::io("write the result to the outbox", self.path_of(id), e));
        // Even when the disk failed, the result is kept in memory and sent: losing it now would
        // be worse than losing it only if the agent also restarts.
        {
            let mut st = self.lock();
            if !st.by_result.contains_key(&id) {
                let seq = st.next;
                st.next += 1;
                st.by_result.insert(id, seq);
                st.jobs.insert(job_id);
                st.entries.insert(
                    seq,
                    Entry {
                        result_id: id,
                        job_id,
                        message,
                    },
                );
            }
        }
        self.added.notify_one();
        res
    }

    /// Removes acknowledged results.
    pub async fn ack(&self, ids: &[Uuid]) {
        let mut paths = Vec::new();
        {
            let mut st = self.lock();
            for id in ids {
                if let Some(seq) = st.by_result.remove(id)
                    && let Some(e) = st.entries.remove(&seq)
                {
                    st.jobs.remove(&e.job_id);
                    paths.push(self.path_of(*id));
                }
            }
        }
        if paths.is_empty() {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for p in paths {
                if let Err(e) = std::fs::remove_file(&p)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(file = %p.display(), "cannot delete an acknowledged result: {e}");
                }
            }
        })
        .await;
    }

    /// The first entry after position `after` (exclusive; `None` starts at the beginning), with
    /// its position.
    pub fn next_after(&self, after: Option<u64>) -> Option<(u64, Entry)> {
        let st = self.lock();
        let range = match after {
            Some(a) => st.entries.range(a + 1..),
            None => st.entries.range(..),
        };
        range.map(|(k, v)| (*k, v.clone())).next()
    }

    /// Whether the outbox holds a result of this job.
    pub fn holds_job(&self, job: Uuid) -> bool {
        self.lock().jobs.contains(&job)
    }

    /// Jobs with a result in the outbox.
    pub fn jobs(&self) -> Vec<Uuid> {
        self.lock().jobs.iter().copied().collect()
    }

    /// Whether a result is still held.
    pub fn holds(&self, result: Uuid) -> bool {
        self.lock().by_result.contains_key(&result)
    }

    /// Number of results held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_proto::{Kind, Outcome};

    fn result() -> MeasurementResult {
        MeasurementResult::failure(Kind::Ping, "192.0.2.1", Outcome::Timeout, "no reply")
    }

    #[tokio::test]
    async fn results_survive_a_restart_in_order_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), true).unwrap();
        let (a, b, c) = (result(), result(), result());
        let jobs = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        ob.put(jobs[0], a.clone()).await.unwrap();
        ob.put(jobs[1], b.clone()).await.unwrap();
        ob.put(jobs[2], c.clone()).await.unwrap();
        ob.ack(&[b.id]).await;
        drop(ob);

        let ob = Outbox::open(dir.path(), true).unwrap();
        assert_eq!(ob.len(), 2);
        let (p1, e1) = ob.next_after(None).unwrap();
        let (p2, e2) = ob.next_after(Some(p1)).unwrap();
        assert_eq!((e1.result_id, e2.result_id), (a.id, c.id));
        assert!(ob.next_after(Some(p2)).is_none());
        assert!(ob.holds_job(jobs[0]) && !ob.holds_job(jobs[1]));
        // The stored message is the link message, ready to send.
        match AgentMessage::decode(&e1.message).unwrap() {
            Some(AgentMessage::JobResult { job_id, result }) => {
                assert_eq!(job_id, jobs[0]);
                assert_eq!(*result, a);
            }
            other => panic!("{other:?}"),
        }
        ob.ack(&[a.id, c.id, Uuid::now_v7()]).await;
        assert!(ob.is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn damaged_files_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk.json"), "{").unwrap();
        std::fs::write(dir.path().join("half.tmp"), "x").unwrap();
        let ob = Outbox::open(dir.path(), false).unwrap();
        assert!(ob.is_empty());
        assert!(dir.path().join("junk.bad").exists());
        assert!(!dir.path().join("half.tmp").exists());
    }
}
