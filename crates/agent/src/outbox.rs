//! The on-disk outbox: every result is written here first and deleted only when the server
//! acknowledges it, so nothing is lost when the link, the server or the agent goes down.
//!
//! The main decision: one file per result (`<result id>.json`, holding the link message ready
//! to send), written to a temporary name, synced, renamed, and the directory synced. That is
//! the simplest layout that survives a crash at any instant (a file is either complete or
//! absent) and makes acknowledgement a delete. Result ids are UUID v7, so file names sort in
//! creation order and re-sends after a restart keep that order.
//!
//! An acknowledged file is not deleted but renamed to `<result id>.spare` (up to
//! [`SPARES_MAX`] of them), and the next result is written into a spare renamed back to its
//! temporary name: a rename allocates no inode, and creating a file does. On ext4 without a
//! journal, each allocation skips every inode deleted in the last minutes, so an agent that
//! creates and deletes a file per result slows down the more results it sends (measured with
//! `bench/agents.sh`: that search was a quarter of the agents' CPU after a few runs).

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

/// Acknowledged files kept for reuse, at most.
pub const SPARES_MAX: usize = 64;

#[derive(Debug, Default)]
struct State {
    /// Insertion order → entry.
    entries: BTreeMap<u64, Entry>,
    by_result: HashMap<Uuid, u64>,
    jobs: HashSet<Uuid>,
    next: u64,
    /// Files of acknowledged results, ready to be written again.
    spares: Vec<PathBuf>,
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
        // Leftovers of writes interrupted by a crash, and the spares to reuse.
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "tmp") {
                    let _ = std::fs::remove_file(&path);
                } else if path.extension().is_some_and(|x| x == "spare") {
                    if st.spares.len() < SPARES_MAX {
                        st.spares.push(path);
                    } else {
                        let _ = std::fs::remove_file(&path);
                    }
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
        let spare = self.lock().spares.pop();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let tmp = path.with_extension("tmp");
            if let Some(spare) = spare {
                // Falls back to a new file if the spare is gone.
                let _ = std::fs::rename(&spare, &tmp);
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
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

    /// Removes acknowledged results (their files become spares while there is room).
    pub async fn ack(&self, ids: &[Uuid]) {
        let mut paths = Vec::new();
        let room;
        {
            let mut st = self.lock();
            room = SPARES_MAX.saturating_sub(st.spares.len());
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
        let spares = tokio::task::spawn_blocking(move || {
            let mut spares = Vec::new();
            for p in paths {
                if spares.len() < room {
                    let spare = p.with_extension("spare");
                    if std::fs::rename(&p, &spare).is_ok() {
                        spares.push(spare);
                        continue;
                    }
                }
                if let Err(e) = std::fs::remove_file(&p)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(file = %p.display(), "cannot delete an acknowledged result: {e}");
                }
            }
            spares
        })
        .await
        .unwrap_or_default();
        // Acknowledgements that ran side by side may together have set aside a few too many.
        let extra = {
            let mut st = self.lock();
            st.spares.extend(spares);
            let keep = st.spares.len().min(SPARES_MAX);
            st.spares.split_off(keep)
        };
        for p in extra {
            let _ = std::fs::remove_file(p);
        }
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
        assert_eq!(files(dir.path(), "json"), 0);
    }

    /// Files in `dir` with this extension.
    fn files(dir: &Path, ext: &str) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == ext))
            .count()
    }

    fn inode(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().ino()
    }

    #[tokio::test]
    async fn acknowledged_files_are_reused_for_later_results_up_to_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), true).unwrap();
        let first = result();
        ob.put(Uuid::now_v7(), first.clone()).await.unwrap();
        let first_inode = inode(&dir.path().join(format!("{}.json", first.id)));
        ob.ack(&[first.id]).await;
        assert_eq!(
            (files(dir.path(), "json"), files(dir.path(), "spare")),
            (0, 1)
        );

        // The next result is written into the spare: same inode, new content, nothing left over.
        let second = result();
        let job = Uuid::now_v7();
        ob.put(job, second.clone()).await.unwrap();
        let path = dir.path().join(format!("{}.json", second.id));
        assert_eq!(inode(&path), first_inode);
        assert_eq!(
            (files(dir.path(), "json"), files(dir.path(), "spare")),
            (1, 0)
        );
        match AgentMessage::decode(&std::fs::read_to_string(&path).unwrap()).unwrap() {
            Some(AgentMessage::JobResult { job_id, result }) => {
                assert_eq!((job_id, *result), (job, second.clone()));
            }
            other => panic!("{other:?}"),
        }

        // Spares survive a restart, and no more than SPARES_MAX are kept.
        let many: Vec<MeasurementResult> = (0..SPARES_MAX + 10).map(|_| result()).collect();
        for r in &many {
            ob.put(Uuid::now_v7(), r.clone()).await.unwrap();
        }
        let ids: Vec<Uuid> = many.iter().map(|r| r.id).chain([second.id]).collect();
        ob.ack(&ids).await;
        drop(ob);
        assert_eq!(files(dir.path(), "spare"), SPARES_MAX);
        let ob = Outbox::open(dir.path(), true).unwrap();
        assert!(ob.is_empty());
        let third = result();
        ob.put(Uuid::now_v7(), third).await.unwrap();
        assert_eq!(files(dir.path(), "spare"), SPARES_MAX - 1);
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
