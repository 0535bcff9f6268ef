//! Storage: every row the server keeps, behind one [`Store`] type.
//!
//! The main decision: one query code path through sqlx's `Any` driver with runtime queries
//! (no compile-time `query!` macros, which need a live database and bind to one backend), `$N`
//! placeholders, ids as UUID text, timestamps as Unix milliseconds and JSON documents as text.
//! That shape runs unchanged on PostgreSQL, so adding it later is a second migrations directory
//! and a URL, not a second store. Only SQLite is built today: WAL mode, `synchronous = FULL`
//! (a result is acknowledged to its agent only after the commit that stores it is durable) and a
//! busy timeout so concurrent writers wait instead of failing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Once;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use uuid::Uuid;
use vantage_proto::link::Capabilities;
use vantage_proto::{AgentFacts, Kind, MeasurementResult, MeasurementSpec};

use crate::Error;
use crate::error::DbContext;
use crate::model::{EntryStatus, MeasurementStatus, Role};

static MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Unix milliseconds of a time.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The time of Unix milliseconds (the epoch for out-of-range values).
pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

fn uuid_col(row: &AnyRow, col: &'static str) -> Result<Uuid, Error> {
    let s: String = row.try_get(col).ctx("reading a row")?;
    Uuid::parse_str(&s).map_err(|e| Error::Corrupt {
        what: col,
        detail: e.to_string(),
    })
}

fn opt_uuid_col(row: &AnyRow, col: &'static str) -> Result<Option<Uuid>, Error> {
    let s: Option<String> = row.try_get(col).ctx("reading a row")?;
    s.map(|s| {
        Uuid::parse_str(&s).map_err(|e| Error::Corrupt {
            what: col,
            detail: e.to_string(),
        })
    })
    .transpose()
}

fn parsed_col<T: FromStr>(row: &AnyRow, col: &'static str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.try_get(col).ctx("reading a row")?;
    s.parse().map_err(|e: T::Err| Error::Corrupt {
        what: col,
        detail: e.to_string(),
    })
}

fn json_col<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &'static str) -> Result<T, Error> {
    let s: String = row.try_get(col).ctx("reading a row")?;
    serde_json::from_str(&s).map_err(|e| Error::Corrupt {
        what: col,
        detail: e.to_string(),
    })
}

fn opt_time(row: &AnyRow, col: &'static str) -> Result<Option<DateTime<Utc>>, Error> {
    let v: Option<i64> = row.try_get(col).ctx("reading a row")?;
    Ok(v.map(from_ms))
}

fn time_col(row: &AnyRow, col: &'static str) -> Result<DateTime<Utc>, Error> {
    let v: i64 = row.try_get(col).ctx("reading a row")?;
    Ok(from_ms(v))
}

/// An API token as stored (only the hash of its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiTokenRow {
    /// Token id.
    pub id: Uuid,
    /// A name for people.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the secret, hex.
    pub token_hash: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    /// Id (also in its certificate).
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// ISO 3166 country code.
    pub country: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// AS number.
    pub asn: Option<u32>,
    /// Software version from its last hello.
    pub version: Option<String>,
    /// Capabilities from its last hello.
    pub capabilities: Option<Capabilities>,
    /// Address the server saw it connect from, last time.
    pub seen_address: Option<String>,
    /// When it enrolled.
    pub enrolled_at: DateTime<Utc>,
    /// Start of its latest session.
    pub connected_since: Option<DateTime<Utc>>,
    /// Last time anything arrived from it (updated periodically while connected).
    pub last_seen: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Serial of its certificate, hex.
    pub cert_serial: String,
    /// Expiry of its certificate.
    pub cert_not_after: DateTime<Utc>,
    /// Whether it is the server's built-in local agent.
    pub builtin: bool,
}

impl AgentRow {
    /// The facts selectors match on.
    pub fn facts(&self) -> AgentFacts {
        AgentFacts {
            id: self.id,
            name: self.name.clone(),
            country: self.country.clone(),
            city: self.city.clone(),
            region: self.region.clone(),
            asn: self.asn,
            labels: self.labels.clone(),
        }
    }

    fn from_row(r: &AnyRow) -> Result<Self, Error> {
        let caps: Option<String> = r.try_get("capabilities").ctx("reading an agent")?;
        let asn: Option<i64> = r.try_get("asn").ctx("reading an agent")?;
        let builtin: i64 = r.try_get("builtin").ctx("reading an agent")?;
        Ok(AgentRow {
            id: uuid_col(r, "id")?,
            name: r.try_get("name").ctx("reading an agent")?,
            labels: json_col(r, "labels")?,
            country: r.try_get("country").ctx("reading an agent")?,
            city: r.try_get("city").ctx("reading an agent")?,
            region: r.try_get("region").ctx("reading an agent")?,
            asn: asn.and_then(|v| u32::try_from(v).ok()),
            version: r.try_get("version").ctx("reading an agent")?,
            capabilities: caps.and_then(|c| serde_json::from_str(&c).ok()),
            seen_address: r.try_get("seen_address").ctx("reading an agent")?,
            enrolled_at: time_col(r, "enrolled_at")?,
            connected_since: opt_time(r, "connected_since")?,
            last_seen: opt_time(r, "last_seen")?,
            revoked_at: opt_time(r, "revoked_at")?,
            cert_serial: r.try_get("cert_serial").ctx("reading an agent")?,
            cert_not_after: time_col(r, "cert_not_after")?,
            builtin: builtin != 0,
        })
    }
}

/// Changes to an agent's descriptive fields; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentChanges {
    /// New name.
    pub name: Option<String>,
    /// New labels (replacing all).
    pub labels: Option<BTreeMap<String, String>>,
    /// New country.
    pub country: Option<Option<String>>,
    /// New city.
    pub city: Option<Option<String>>,
    /// New region.
    pub region: Option<Option<String>>,
    /// New AS number.
    pub asn: Option<Option<u32>>,
}

/// A measurement as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementRow {
    /// Id (UUID v7: sorts by creation time).
    pub id: Uuid,
    /// The spec.
    pub spec: MeasurementSpec,
    /// The selector as given.
    pub selector: String,
    /// Running or finished.
    pub status: MeasurementStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When agents that have not answered count as lost.
    pub deadline: DateTime<Utc>,
    /// When the last agent finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The API token id that created it.
    pub created_by: Option<String>,
}

impl MeasurementRow {
    fn from_row(r: &AnyRow) -> Result<Self, Error> {
        Ok(MeasurementRow {
            id: uuid_col(r, "id")?,
            spec: json_col(r, "spec")?,
            selector: r.try_get("selector").ctx("reading a measurement")?,
            status: parsed_col(r, "status")?,
            created_at: time_col(r, "created_at")?,
            deadline: time_col(r, "deadline")?,
            finished_at: opt_time(r, "finished_at")?,
            created_by: r.try_get("created_by").ctx("reading a measurement")?,
        })
    }
}

/// One selected agent's job within a measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    /// Job id.
    pub job_id: Uuid,
    /// Measurement.
    pub measurement_id: Uuid,
    /// Agent.
    pub agent_id: Uuid,
    /// Status.
    pub status: EntryStatus,
    /// The result that answered the job.
    pub result_id: Option<Uuid>,
    /// Why it is lost (a sentence), when it is.
    pub reason: Option<String>,
    /// Whether the result arrived after the deadline.
    pub late: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl EntryRow {
    fn from_row(r: &AnyRow) -> Result<Self, Error> {
        let late: i64 = r.try_get("late").ctx("reading a job")?;
        Ok(EntryRow {
            job_id: uuid_col(r, "job_id")?,
            measurement_id: uuid_col(r, "measurement_id")?,
            agent_id: uuid_col(r, "agent_id")?,
            status: parsed_col(r, "status")?,
            result_id: opt_uuid_col(r, "result_id")?,
            reason: r.try_get("reason").ctx("reading a job")?,
            late: late != 0,
            updated_at: time_col(r, "updated_at")?,
        })
    }
}

/// How consuming an enrolment token went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// The token was valid and is now used up.
    Accepted,
    /// No such token.
    Unknown,
    /// The token was used before.
    AlreadyUsed,
    /// The token expired.
    Expired,
}

/// Filters of the measurement list.
#[derive(Debug, Clone, Default)]
pub struct MeasurementFilter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this status.
    pub status: Option<MeasurementStatus>,
    /// Only this exact target.
    pub target: Option<String>,
    /// Only measurements that selected this agent.
    pub agent: Option<Uuid>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
    /// Continue after this id (exclusive; newest first).
    pub before_id: Option<Uuid>,
    /// Page size.
    pub limit: u32,
}

/// A result to store, with what it answers.
#[derive(Debug, Clone)]
pub struct ResultWrite {
    /// The job it answers.
    pub job_id: Uuid,
    /// The agent that sent it (from its certificate, not from the result).
    pub agent_id: Uuid,
    /// The measurement.
    pub measurement_id: Uuid,
    /// The envelope.
    pub result: MeasurementResult,
}

/// A change of one job's status.
#[derive(Debug, Clone)]
pub struct EntryWrite {
    /// The job.
    pub job_id: Uuid,
    /// New status.
    pub status: EntryStatus,
    /// The answering result.
    pub result_id: Option<Uuid>,
    /// Why (for `agent_lost`).
    pub reason: Option<String>,
    /// Whether it arrived after the deadline.
    pub late: bool,
}

/// Everything one commit of the result writer changes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Results to insert (ignored when the id is already stored).
    pub results: Vec<ResultWrite>,
    /// Job status changes.
    pub entries: Vec<EntryWrite>,
    /// Jobs handed to their agent (queued → running).
    pub dispatched: Vec<Uuid>,
    /// Measurements that are now finished.
    pub finished: Vec<Uuid>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
            && self.entries.is_empty()
            && self.dispatched.is_empty()
            && self.finished.is_empty()
    }
}

/// A value to bind in a dynamically built query.
enum Arg {
    Text(String),
    Int(i64),
}

/// Rows per multi-row statement, kept under SQLite's historical limit of 999 bound values.
const RESULT_ROWS: usize = 100;
/// Job rows per statement (5 values each).
const ENTRY_ROWS: usize = 150;
/// Ids per `IN (…)` list.
const ID_ROWS: usize = 500;

/// `(?, ?, …), (?, ?, …)…`: `rows` groups of `cols` placeholders. Statements built with it hold
/// only placeholders; every value is bound.
fn placeholders(rows: usize, cols: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    vec![one; rows].join(", ")
}

/// The storage of the server.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

static DRIVERS: Once = Once::new();

impl Store {
    /// Opens (creating if needed) the SQLite database in `data_dir` and applies migrations.
    pub async fn open_sqlite(data_dir: &Path) -> Result<Store, Error> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let path = data_dir.join("vantage.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = FULL",
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .ctx("opening the SQLite database")?;
        MIGRATIONS_SQLITE.run(&pool).await?;
        Ok(Store { pool })
    }

    /// Checks the database answers (readiness).
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .ctx("checking the database")?;
        Ok(())
    }

    // ---- API tokens ----

    /// Every API token.
    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, name, role, token_hash, created_at, revoked_at FROM api_tokens",
        )
        .fetch_all(&self.pool)
        .await
        .ctx("listing API tokens")?;
        rows.iter()
            .map(|r| {
                Ok(ApiTokenRow {
                    id: uuid_col(r, "id")?,
                    name: r.try_get("name").ctx("reading a token")?,
                    role: parsed_col(r, "role")?,
                    token_hash: r.try_get("token_hash").ctx("reading a token")?,
                    created_at: time_col(r, "created_at")?,
                    revoked_at: opt_time(r, "revoked_at")?,
                })
            })
            .collect()
    }

    /// Stores a new API token.
    pub async fn insert_api_token(&self, t: &ApiTokenRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(t.id.to_string())
        .bind(t.name.clone())
        .bind(t.role.as_str())
        .bind(t.token_hash.clone())
        .bind(ms(t.created_at))
        .execute(&self.pool)
        .await
        .ctx("storing an API token")?;
        Ok(())
    }

    // ---- enrolment tokens ----

    /// Stores a new enrolment token (its hash).
    pub async fn insert_enroll_token(
        &self,
        id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        created_by: Option<&str>,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (id, token_hash, created_at, expires_at, created_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(token_hash.to_string())
        .bind(ms(Utc::now()))
        .bind(ms(expires_at))
        .bind(created_by.map(str::to_string))
        .execute(&self.pool)
        .await
        .ctx("storing an enrolment token")?;
        Ok(())
    }

    /// Uses up an enrolment token for `agent` and stores the agent, atomically: a token is
    /// consumed only by an enrolment that is stored, and only once.
    pub async fn enroll_agent(
        &self,
        token_hash: &str,
        agent: &AgentRow,
    ) -> Result<TokenUse, Error> {
        let now = ms(Utc::now());
        let mut tx = self.pool.begin().await.ctx("starting an enrolment")?;
        let updated = sqlx::query(
            "UPDATE enrollment_tokens SET used_at = $1, agent_id = $2 WHERE token_hash = $3 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(agent.id.to_string())
        .bind(token_hash.to_string())
        .execute(&mut *tx)
        .await
        .ctx("using an enrolment token")?
        .rows_affected();
        if updated != 1 {
            let row = sqlx::query("SELECT used_at FROM enrollment_tokens WHERE token_hash = $1")
                .bind(token_hash.to_string())
                .fetch_optional(&mut *tx)
                .await
                .ctx("checking an enrolment token")?;
            tx.rollback().await.ctx("ending an enrolment")?;
            return Ok(match row {
                None => TokenUse::Unknown,
                Some(r) => {
                    let used: Option<i64> = r.try_get("used_at").ctx("reading a token")?;
                    if used.is_some() {
                        TokenUse::AlreadyUsed
                    } else {
                        TokenUse::Expired
                    }
                }
            });
        }
        Self::insert_agent_in(&mut tx, agent).await?;
        tx.commit().await.ctx("committing an enrolment")?;
        Ok(TokenUse::Accepted)
    }

    // ---- agents ----

    async fn insert_agent_in(conn: &mut sqlx::AnyConnection, a: &AgentRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO agents (id, name, labels, country, city, region, asn, enrolled_at, cert_serial, cert_not_after, builtin)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(a.id.to_string())
        .bind(a.name.clone())
        .bind(serde_json::to_string(&a.labels).unwrap_or_else(|_| "{}".into()))
        .bind(a.country.clone())
        .bind(a.city.clone())
        .bind(a.region.clone())
        .bind(a.asn.map(i64::from))
        .bind(ms(a.enrolled_at))
        .bind(a.cert_serial.clone())
        .bind(ms(a.cert_not_after))
        .bind(i64::from(a.builtin))
        .execute(conn)
        .await
        .ctx("storing an agent")?;
        Ok(())
    }

    /// Stores an agent enrolled without a token (the built-in local agent).
    pub async fn insert_agent(&self, a: &AgentRow) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await.ctx("storing an agent")?;
        Self::insert_agent_in(&mut conn, a).await
    }

    /// Every agent, oldest enrolment first.
    pub async fn agents(&self) -> Result<Vec<AgentRow>, Error> {
        let rows = sqlx::query("SELECT * FROM agents ORDER BY enrolled_at, id")
            .fetch_all(&self.pool)
            .await
            .ctx("listing agents")?;
        rows.iter().map(AgentRow::from_row).collect()
    }

    /// One agent.
    pub async fn agent(&self, id: Uuid) -> Result<Option<AgentRow>, Error> {
        let row = sqlx::query("SELECT * FROM agents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .ctx("reading an agent")?;
        row.as_ref().map(AgentRow::from_row).transpose()
    }

    /// Applies descriptive changes; false when the agent does not exist.
    pub async fn update_agent(&self, id: Uuid, c: &AgentChanges) -> Result<bool, Error> {
        let mut sets: Vec<String> = Vec::new();
        let mut args: Vec<Option<Arg>> = Vec::new();
        let mut push = |col: &str, v: Option<Arg>| {
            args.push(v);
            sets.push(format!("{col} = ${}", args.len()));
        };
        if let Some(n) = &c.name {
            push("name", Some(Arg::Text(n.clone())));
        }
        if let Some(l) = &c.labels {
            push(
                "labels",
                Some(Arg::Text(
                    serde_json::to_string(l).unwrap_or_else(|_| "{}".into()),
                )),
            );
        }
        if let Some(v) = &c.country {
            push("country", v.clone().map(Arg::Text));
        }
        if let Some(v) = &c.city {
            push("city", v.clone().map(Arg::Text));
        }
        if let Some(v) = &c.region {
            push("region", v.clone().map(Arg::Text));
        }
        if let Some(v) = &c.asn {
            push("asn", v.map(|n| Arg::Int(i64::from(n))));
        }
        if sets.is_empty() {
            return Ok(self.agent(id).await?.is_some());
        }
        let sql = format!(
            "UPDATE agents SET {} WHERE id = ${}",
            sets.join(", "),
            args.len() + 1
        );
        // Audited: the SQL holds only fixed column names and $N placeholders; values are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = match a {
                Some(Arg::Text(s)) => q.bind(s),
                Some(Arg::Int(i)) => q.bind(i),
                None => q.bind(None::<String>),
            };
        }
        let n = q
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .ctx("updating an agent")?
            .rows_affected();
        Ok(n == 1)
    }

    /// Records the start of a session.
    pub async fn record_connect(
        &self,
        id: Uuid,
        version: &str,
        caps: &Capabilities,
        seen: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE agents SET version = $1, capabilities = $2, seen_address = $3, connected_since = $4, last_seen = $4 WHERE id = $5",
        )
        .bind(version.to_string())
        .bind(serde_json::to_string(caps).unwrap_or_default())
        .bind(seen.to_string())
        .bind(ms(at))
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .ctx("recording an agent connection")?;
        Ok(())
    }

    /// Records when agents were last heard from.
    pub async fn record_seen(&self, seen: &[(Uuid, DateTime<Utc>)]) -> Result<(), Error> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.ctx("recording last-seen times")?;
        for (id, at) in seen {
            sqlx::query("UPDATE agents SET last_seen = $1 WHERE id = $2")
                .bind(ms(*at))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .ctx("recording last-seen times")?;
        }
        tx.commit().await.ctx("recording last-seen times")?;
        Ok(())
    }

    /// Marks an agent revoked; false when it does not exist. Revoking twice keeps the first time.
    pub async fn revoke_agent(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
        let n =
            sqlx::query("UPDATE agents SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(ms(at))
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .ctx("revoking an agent")?
                .rows_affected();
        Ok(n == 1)
    }

    /// Ids of revoked agents.
    pub async fn revoked_agents(&self) -> Result<BTreeSet<Uuid>, Error> {
        let rows = sqlx::query("SELECT id FROM agents WHERE revoked_at IS NOT NULL")
            .fetch_all(&self.pool)
            .await
            .ctx("listing revoked agents")?;
        rows.iter().map(|r| uuid_col(r, "id")).collect()
    }

    // ---- measurements ----

    /// Stores a new measurement and its jobs in one transaction.
    pub async fn insert_measurement(
        &self,
        m: &MeasurementRow,
        entries: &[EntryRow],
    ) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.ctx("storing a measurement")?;
        sqlx::query(
            "INSERT INTO measurements (id, kind, target, spec, selector, status, created_at, deadline, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(m.id.to_string())
        .bind(m.spec.kind().as_str())
        .bind(m.spec.target().to_string())
        .bind(serde_json::to_string(&m.spec).unwrap_or_default())
        .bind(m.selector.clone())
        .bind(m.status.as_str())
        .bind(ms(m.created_at))
        .bind(ms(m.deadline))
        .bind(m.created_by.clone())
        .execute(&mut *tx)
        .await
        .ctx("storing a measurement")?;
        for chunk in entries.chunks(ENTRY_ROWS) {
            let sql = format!(
                "INSERT INTO measurement_agents (job_id, measurement_id, agent_id, status, updated_at) VALUES {}",
                placeholders(chunk.len(), 5)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(e.job_id.to_string())
                    .bind(e.measurement_id.to_string())
                    .bind(e.agent_id.to_string())
                    .bind(e.status.as_str())
                    .bind(ms(e.updated_at));
            }
            q.execute(&mut *tx)
                .await
                .ctx("storing a measurement's jobs")?;
        }
        tx.commit().await.ctx("storing a measurement")?;
        Ok(())
    }

    /// One measurement.
    pub async fn measurement(&self, id: Uuid) -> Result<Option<MeasurementRow>, Error> {
        let row = sqlx::query("SELECT * FROM measurements WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .ctx("reading a measurement")?;
        row.as_ref().map(MeasurementRow::from_row).transpose()
    }

    /// The jobs of a measurement with their results, in selection order.
    pub async fn entries(
        &self,
        measurement_id: Uuid,
    ) -> Result<Vec<(EntryRow, Option<MeasurementResult>)>, Error> {
        let rows = sqlx::query(
            "SELECT e.*, r.body AS result_body FROM measurement_agents e
             LEFT JOIN results r ON r.id = e.result_id
             WHERE e.measurement_id = $1 ORDER BY e.job_id",
        )
        .bind(measurement_id.to_string())
        .fetch_all(&self.pool)
        .await
        .ctx("reading a measurement's jobs")?;
        rows.iter()
            .map(|r| {
                let body: Option<String> = r.try_get("result_body").ctx("reading a result")?;
                let result = body
                    .map(|b| {
                        serde_json::from_str(&b).map_err(|e| Error::Corrupt {
                            what: "result",
                            detail: e.to_string(),
                        })
                    })
                    .transpose()?;
                Ok((EntryRow::from_row(r)?, result))
            })
            .collect()
    }

    /// One job.
    pub async fn entry(&self, job_id: Uuid) -> Result<Option<EntryRow>, Error> {
        let row = sqlx::query("SELECT * FROM measurement_agents WHERE job_id = $1")
            .bind(job_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .ctx("reading a job")?;
        row.as_ref().map(EntryRow::from_row).transpose()
    }

    /// Measurements matching a filter, newest first, at most `limit + 1` (the extra row tells
    /// the caller there is a next page).
    pub async fn list_measurements(
        &self,
        f: &MeasurementFilter,
    ) -> Result<Vec<MeasurementRow>, Error> {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let mut cond = |sql: &str, a: Arg| {
            args.push(a);
            conds.push(sql.replace('?', &format!("${}", args.len())));
        };
        if let Some(k) = f.kind {
            cond("m.kind = ?", Arg::Text(k.as_str().into()));
        }
        if let Some(s) = f.status {
            cond("m.status = ?", Arg::Text(s.as_str().into()));
        }
        if let Some(t) = &f.target {
            cond("m.target = ?", Arg::Text(t.clone()));
        }
        if let Some(a) = f.agent {
            cond(
                "EXISTS (SELECT 1 FROM measurement_agents e WHERE e.measurement_id = m.id AND e.agent_id = ?)",
                Arg::Text(a.to_string()),
            );
        }
        if let Some(t) = f.since {
            cond("m.created_at >= ?", Arg::Int(ms(t)));
        }
        if let Some(t) = f.until {
            cond("m.created_at < ?", Arg::Int(ms(t)));
        }
        if let Some(id) = f.before_id {
            cond("m.id < ?", Arg::Text(id.to_string()));
        }
        let mut sql = String::from("SELECT m.* FROM measurements m");
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(&format!(
            " ORDER BY m.id DESC LIMIT {}",
            u64::from(f.limit) + 1
        ));
        // Audited: the SQL holds only fixed column names and $N placeholders; values are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = match a {
                Arg::Text(s) => q.bind(s),
                Arg::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.pool).await.ctx("listing measurements")?;
        rows.iter().map(MeasurementRow::from_row).collect()
    }

    /// Job counts by status for each of the given measurements.
    pub async fn entry_counts(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, BTreeMap<EntryStatus, u32>>, Error> {
        let mut out: HashMap<Uuid, BTreeMap<EntryStatus, u32>> = HashMap::new();
        for chunk in ids.chunks(200) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT measurement_id, status, COUNT(*) AS n FROM measurement_agents WHERE measurement_id IN ({}) GROUP BY measurement_id, status",
                placeholders.join(", ")
            );
            // Audited: the SQL holds only fixed column names and $N placeholders; values are bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.to_string());
            }
            for r in q.fetch_all(&self.pool).await.ctx("counting jobs")? {
                let n: i64 = r.try_get("n").ctx("counting jobs")?;
                out.entry(uuid_col(&r, "measurement_id")?)
                    .or_default()
                    .insert(
                        parsed_col(&r, "status")?,
                        u32::try_from(n).unwrap_or(u32::MAX),
                    );
            }
        }
        Ok(out)
    }

    /// The agents each of the given measurements selected (for `msm:` selectors).
    pub async fn measurement_agents(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, BTreeSet<Uuid>>, Error> {
        let mut out: HashMap<Uuid, BTreeSet<Uuid>> = HashMap::new();
        for id in ids {
            let rows =
                sqlx::query("SELECT agent_id FROM measurement_agents WHERE measurement_id = $1")
                    .bind(id.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .ctx("reading a measurement's agents")?;
            if rows.is_empty() {
                continue;
            }
            let set = rows
                .iter()
                .map(|r| uuid_col(r, "agent_id"))
                .collect::<Result<_, _>>()?;
            out.insert(*id, set);
        }
        Ok(out)
    }

    /// Unfinished measurements with their jobs (to resume after a restart).
    pub async fn unfinished(&self) -> Result<Vec<(MeasurementRow, Vec<EntryRow>)>, Error> {
        let rows = sqlx::query("SELECT * FROM measurements WHERE status = 'running' ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .ctx("listing unfinished measurements")?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let m = MeasurementRow::from_row(r)?;
            let entries = sqlx::query("SELECT * FROM measurement_agents WHERE measurement_id = $1")
                .bind(m.id.to_string())
                .fetch_all(&self.pool)
                .await
                .ctx("reading a measurement's jobs")?
                .iter()
                .map(EntryRow::from_row)
                .collect::<Result<Vec<_>, _>>()?;
            out.push((m, entries));
        }
        Ok(out)
    }

    /// Number of measurements in each status.
    pub async fn measurement_counts(&self) -> Result<BTreeMap<MeasurementStatus, u64>, Error> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM measurements GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .ctx("counting measurements")?;
        let mut out = BTreeMap::new();
        for r in &rows {
            let n: i64 = r.try_get("n").ctx("counting measurements")?;
            out.insert(parsed_col(r, "status")?, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }

    /// Whether a result id is stored.
    pub async fn has_result(&self, id: Uuid) -> Result<bool, Error> {
        Ok(sqlx::query("SELECT 1 FROM results WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .ctx("looking up a result")?
            .is_some())
    }

    /// Number of stored results of a measurement (tests and benchmarks count them).
    pub async fn result_count(&self, measurement_id: Uuid) -> Result<u64, Error> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM results WHERE measurement_id = $1")
            .bind(measurement_id.to_string())
            .fetch_one(&self.pool)
            .await
            .ctx("counting results")?;
        let n: i64 = r.try_get("n").ctx("counting results")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Number of rows in each table (tests check that refused requests stored nothing).
    pub async fn row_counts(&self) -> Result<BTreeMap<&'static str, u64>, Error> {
        let mut out = BTreeMap::new();
        for table in [
            "api_tokens",
            "enrollment_tokens",
            "agents",
            "measurements",
            "measurement_agents",
            "results",
        ] {
            let sql = format!("SELECT COUNT(*) AS n FROM {table}");
            // Audited: the table name comes from the fixed list above.
            let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(&self.pool)
                .await
                .ctx("counting rows")?;
            let n: i64 = r.try_get("n").ctx("counting rows")?;
            out.insert(table, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }

    /// Writes one batch in one transaction. Results whose id is already stored are skipped.
    ///
    /// Rows go in multi-row statements: with SQLite every statement is a round trip to the
    /// database thread, and a thousand results written one statement each spent most of their
    /// commit time in those hand-offs (measured with `bench/agents.sh`).
    pub async fn apply(&self, b: &Batch) -> Result<(), Error> {
        let now = ms(Utc::now());
        let mut tx = self.pool.begin().await.ctx("starting a write")?;
        for chunk in b.results.chunks(RESULT_ROWS) {
            let sql = format!(
                "INSERT INTO results (id, measurement_id, agent_id, job_id, outcome, started_at, body, stored_at)
                 VALUES {} ON CONFLICT (id) DO NOTHING",
                placeholders(chunk.len(), 8)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.result.id.to_string())
                    .bind(r.measurement_id.to_string())
                    .bind(r.agent_id.to_string())
                    .bind(r.job_id.to_string())
                    .bind(r.result.outcome.as_str())
                    .bind(ms(r.result.started_at))
                    .bind(serde_json::to_string(&r.result).unwrap_or_default())
                    .bind(now);
            }
            q.execute(&mut *tx).await.ctx("storing results")?;
        }
        // One change per job: when a batch holds two for the same job, the later one wins, as
        // it would with one statement each.
        let mut seen = HashSet::new();
        let mut entries: Vec<&EntryWrite> = b
            .entries
            .iter()
            .rev()
            .filter(|e| seen.insert(e.job_id))
            .collect();
        entries.reverse();
        for chunk in entries.chunks(ENTRY_ROWS) {
            let sql = format!(
                "WITH v (job_id, status, result_id, reason, late) AS (VALUES {})
                 UPDATE measurement_agents
                 SET status = v.status, result_id = v.result_id, reason = v.reason, late = v.late, updated_at = ?
                 FROM v WHERE measurement_agents.job_id = v.job_id",
                placeholders(chunk.len(), 5)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(e.job_id.to_string())
                    .bind(e.status.as_str())
                    .bind(e.result_id.map(|u| u.to_string()))
                    .bind(e.reason.clone())
                    .bind(i64::from(e.late));
            }
            q.bind(now).execute(&mut *tx).await.ctx("updating jobs")?;
        }
        update_ids(
            &mut tx,
            "UPDATE measurement_agents SET status = 'running', updated_at = ?
             WHERE status = 'queued' AND job_id IN",
            now,
            &b.dispatched,
            "marking jobs running",
        )
        .await?;
        update_ids(
            &mut tx,
            "UPDATE measurements SET status = 'finished', finished_at = ?
             WHERE status = 'running' AND id IN",
            now,
            &b.finished,
            "finishing measurements",
        )
        .await?;
        tx.commit().await.ctx("committing a write")?;
        Ok(())
    }
}

/// Runs `head` (an UPDATE ending in `IN`, whose one parameter is `now`) over `ids`, a chunk of
/// at most [`ID_ROWS`] ids per statement.
async fn update_ids(
    conn: &mut sqlx::AnyConnection,
    head: &'static str,
    now: i64,
    ids: &[Uuid],
    what: &'static str,
) -> Result<(), Error> {
    for chunk in ids.chunks(ID_ROWS) {
        let sql = format!("{head} ({})", vec!["?"; chunk.len()].join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for id in chunk {
            q = q.bind(id.to_string());
        }
        q.execute(&mut *conn).await.ctx(what)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_proto::{Kind, MeasurementSpec, Outcome, PingSpec};

    fn agent(i: usize) -> AgentRow {
        AgentRow {
            id: Uuid::now_v7(),
            name: format!("a{i}"),
            labels: BTreeMap::new(),
            country: None,
            city: None,
            region: None,
            asn: None,
            version: None,
            capabilities: None,
            seen_address: None,
            enrolled_at: Utc::now(),
            connected_since: None,
            last_seen: None,
            revoked_at: None,
            cert_serial: format!("{i:x}"),
            cert_not_after: Utc::now(),
            builtin: false,
        }
    }

    #[test]
    fn placeholders_group_rows() {
        assert_eq!(placeholders(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(placeholders(1, 1), "(?)");
    }

    /// A batch bigger than every statement chunk is stored completely, and of two changes to one
    /// job in a batch the later wins.
    #[tokio::test]
    async fn big_batches_are_written_completely() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        let n = ID_ROWS + 37; // more than one chunk of every kind
        let agents: Vec<AgentRow> = (0..n).map(agent).collect();
        for a in &agents {
            store.insert_agent(a).await.unwrap();
        }
        let now = Utc::now();
        let mid = Uuid::now_v7();
        let entries: Vec<EntryRow> = agents
            .iter()
            .map(|a| EntryRow {
                job_id: Uuid::now_v7(),
                measurement_id: mid,
                agent_id: a.id,
                status: EntryStatus::Queued,
                result_id: None,
                reason: None,
                late: false,
                updated_at: now,
            })
            .collect();
        let m = MeasurementRow {
            id: mid,
            spec: MeasurementSpec::Ping(PingSpec::new("127.0.0.1")),
            selector: "all".into(),
            status: MeasurementStatus::Running,
            created_at: now,
            deadline: now,
            finished_at: None,
            created_by: None,
        };
        store.insert_measurement(&m, &entries).await.unwrap();

        // First commit: every job dispatched.
        store
            .apply(&Batch {
                dispatched: entries.iter().map(|e| e.job_id).collect(),
                ..Batch::default()
            })
            .await
            .unwrap();
        let stored = store.entries(mid).await.unwrap();
        assert_eq!(stored.len(), n);
        assert!(stored.iter().all(|(e, _)| e.status == EntryStatus::Running));

        // Second commit: a result for every job but the last, which is lost; the first job
        // gets a second, later change in the same batch.
        let mut b = Batch::default();
        for (i, e) in entries.iter().enumerate() {
            let mut r = MeasurementResult::failure(Kind::Ping, "127.0.0.1", Outcome::Ok, "x");
            r.measurement_id = Some(mid);
            let lost = i == n - 1;
            b.entries.push(EntryWrite {
                job_id: e.job_id,
                status: if lost {
                    EntryStatus::AgentLost
                } else {
                    EntryStatus::Done
                },
                result_id: Some(r.id),
                reason: lost.then(|| "gone".to_string()),
                late: false,
            });
            b.results.push(ResultWrite {
                job_id: e.job_id,
                agent_id: e.agent_id,
                measurement_id: mid,
                result: r,
            });
        }
        b.entries.push(EntryWrite {
            job_id: entries[0].job_id,
            status: EntryStatus::Failed,
            result_id: b.entries[0].result_id,
            reason: Some("second".into()),
            late: true,
        });
        b.finished.push(mid);
        store.apply(&b).await.unwrap();
        // The same results again (an agent re-sending) change nothing.
        store
            .apply(&Batch {
                results: b.results.clone(),
                ..Batch::default()
            })
            .await
            .unwrap();

        assert_eq!(store.result_count(mid).await.unwrap(), n as u64);
        let stored: HashMap<Uuid, (EntryRow, Option<MeasurementResult>)> = store
            .entries(mid)
            .await
            .unwrap()
            .into_iter()
            .map(|(e, r)| (e.job_id, (e, r)))
            .collect();
        for (i, e) in entries.iter().enumerate() {
            let (row, result) = &stored[&e.job_id];
            let want = b.entries[i].result_id;
            assert_eq!(row.result_id, want, "job {i}");
            assert_eq!(result.as_ref().map(|r| r.id), want, "job {i}");
            let (status, reason, late) = match i {
                0 => (EntryStatus::Failed, Some("second"), true),
                i if i == n - 1 => (EntryStatus::AgentLost, Some("gone"), false),
                _ => (EntryStatus::Done, None, false),
            };
            assert_eq!(row.status, status, "job {i}");
            assert_eq!(row.reason.as_deref(), reason, "job {i}");
            assert_eq!(row.late, late, "job {i}");
        }
        let m = store.measurement(mid).await.unwrap().unwrap();
        assert_eq!(m.status, MeasurementStatus::Finished);
        assert!(m.finished_at.is_some());
    }
}
