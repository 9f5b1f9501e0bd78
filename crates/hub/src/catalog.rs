//! The hub's metadata in SQLite: models, owners, repositories, versions and tags, with the
//! publishing rules applied in one transaction (schema in docs/hub.md, "SQLite schema").
//!
//! One connection behind a mutex, used from `spawn_blocking`: publishes are rare and small, and
//! serialising them makes the check-then-insert of the publishing rules atomic (on top of the
//! `BEGIN IMMEDIATE` transactions that keep it so even against another process).

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use vouch_types::{Address, ModelId, publish::SignedManifest};

use crate::{
    HubError,
    records::{
        DEFAULT_LIST_LIMIT, ListQuery, ModelRecord, RepoRecord, RepoSummary, VersionRecord,
        VersionSummary,
    },
    version::{self, VersionKey},
};

/// Schema migrations, applied in order; entry `i` brings the schema to version `i + 1`. Never
/// edit an applied entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "
    CREATE TABLE models (
        digest     BLOB PRIMARY KEY CHECK (length(digest) = 32),
        size       INTEGER NOT NULL CHECK (size >= 0),
        summary    TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE owners (
        owner      TEXT PRIMARY KEY,
        address    TEXT NOT NULL,
        claimed_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE repos (
        name       TEXT PRIMARY KEY,
        owner      TEXT NOT NULL REFERENCES owners(owner),
        latest     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX repos_owner ON repos(owner);
    CREATE TABLE versions (
        name         TEXT NOT NULL REFERENCES repos(name),
        version      TEXT NOT NULL,
        digest       BLOB NOT NULL REFERENCES models(digest),
        publisher    TEXT NOT NULL,
        description  TEXT NOT NULL,
        task         TEXT NOT NULL,
        nonce        BLOB NOT NULL UNIQUE,
        manifest     TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID;
    CREATE INDEX versions_task ON versions(task);
    CREATE TABLE version_tags (
        name    TEXT NOT NULL,
        version TEXT NOT NULL,
        tag     TEXT NOT NULL,
        PRIMARY KEY (name, version, tag),
        FOREIGN KEY (name, version) REFERENCES versions(name, version)
    ) WITHOUT ROWID;
    CREATE INDEX version_tags_tag ON version_tags(tag);
    ",
];

/// The current schema version.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The metadata database.
#[derive(Clone)]
pub(crate) struct Catalog {
    conn: Arc<Mutex<Connection>>,
}

/// What a publish needs besides the manifest.
pub(crate) struct PublishContext {
    pub now: u64,
    pub window_secs: u64,
}

fn i64_of(v: u64, what: &str) -> Result<i64, HubError> {
    i64::try_from(v).map_err(|_| HubError::InvalidArgument(format!("{what} {v} is too large")))
}

fn u64_of(v: i64) -> u64 {
    // Columns are written from u64 values checked to fit i64.
    u64::try_from(v).unwrap_or(0)
}

fn corrupt_row(what: &str, e: impl std::fmt::Display) -> HubError {
    HubError::Database(format!("unreadable {what} in the database: {e}"))
}

fn digest_of(blob: Vec<u8>) -> Result<ModelId, HubError> {
    let d: [u8; 32] = blob
        .try_into()
        .map_err(|_| corrupt_row("digest", "not 32 bytes"))?;
    Ok(ModelId::from_digest(d))
}

fn parse_address(s: &str) -> Result<Address, HubError> {
    s.parse().map_err(|e| corrupt_row("address", e))
}

fn parse_manifest(json: &str) -> Result<SignedManifest, HubError> {
    serde_json::from_str(json).map_err(|e| corrupt_row("manifest", e))
}

impl Catalog {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub(crate) fn open(path: &Path) -> Result<Catalog, HubError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(HubError::Database(format!(
                "could not switch to WAL mode (got {mode})"
            )));
        }
        // FULL: a commit is on disk before a publish is acknowledged.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn)?;
        Ok(Catalog {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection in a blocking thread.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, HubError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, HubError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic mid-transaction rolls the transaction back when it unwinds, so a poisoned
            // lock still guards a consistent database.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| HubError::Database(format!("database task failed: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), HubError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL
        )",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if current > SCHEMA_VERSION {
        return Err(HubError::Config(format!(
            "the database has schema version {current}, newer than this build's {SCHEMA_VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![i as i64 + 1, i64_of(crate::unix_now(), "time")?],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// Inserts a model unless present; returns the stored record and whether it existed.
pub(crate) fn insert_model(
    conn: &mut Connection,
    record: &ModelRecord,
) -> Result<(ModelRecord, bool), HubError> {
    let summary = serde_json::to_string(&record.summary)
        .map_err(|e| HubError::Database(format!("encoding a summary: {e}")))?;
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO models (digest, size, summary, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            record.id.digest().as_slice(),
            i64_of(record.size, "size")?,
            summary,
            i64_of(record.created_at, "time")?,
        ],
    )?;
    if inserted == 1 {
        return Ok((record.clone(), false));
    }
    let existing = get_model(conn, &record.id)?
        .ok_or_else(|| HubError::Database("a model row vanished during an upload".into()))?;
    Ok((existing, true))
}

/// A model's record.
pub(crate) fn get_model(conn: &Connection, id: &ModelId) -> Result<Option<ModelRecord>, HubError> {
    let row = conn
        .query_row(
            "SELECT size, summary, created_at FROM models WHERE digest = ?1",
            [id.digest().as_slice()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((size, summary, created_at)) = row else {
        return Ok(None);
    };
    Ok(Some(ModelRecord {
        id: *id,
        size: u64_of(size),
        summary: serde_json::from_str(&summary).map_err(|e| corrupt_row("summary", e))?,
        created_at: u64_of(created_at),
    }))
}

/// Applies the publishing rules after the signature check (docs/hub.md, "Publishing") and
/// records the version, all in one transaction.
pub(crate) fn publish(
    conn: &mut Connection,
    signed: &SignedManifest,
    ctx: &PublishContext,
) -> Result<VersionRecord, HubError> {
    let m = &signed.manifest;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

    // The identical signed manifest again (a retry): answer as the first time, whatever the
    // clock says now, since it changes nothing.
    let existing: Option<String> = tx
        .query_row(
            "SELECT manifest FROM versions WHERE name = ?1 AND version = ?2",
            params![m.name, m.version],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(json) = &existing
        && parse_manifest(json)? == *signed
    {
        return version_record(&tx, &m.name, &m.version)?
            .ok_or_else(|| HubError::Database("a version row vanished".into()));
    }

    if m.timestamp.abs_diff(ctx.now) > ctx.window_secs {
        return Err(HubError::StaleTimestamp {
            timestamp: m.timestamp,
            now: ctx.now,
            window_secs: ctx.window_secs,
        });
    }
    let nonce_seen: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM versions WHERE nonce = ?1)",
        [m.nonce.0.as_slice()],
        |r| r.get(0),
    )?;
    if nonce_seen {
        return Err(HubError::Replayed(m.nonce.to_string()));
    }
    if get_model(&tx, &m.model)?.is_none() {
        return Err(HubError::UnknownModel(m.model));
    }
    let (owner, _) = m
        .name
        .split_once('/')
        .expect("check_name guarantees owner/model");
    let claimed: Option<String> = tx
        .query_row(
            "SELECT address FROM owners WHERE owner = ?1",
            [owner],
            |r| r.get(0),
        )
        .optional()?;
    let now = i64_of(ctx.now, "time")?;
    match claimed {
        Some(a) => {
            let claimed_by = parse_address(&a)?;
            if claimed_by != m.publisher {
                return Err(HubError::NotOwner {
                    owner: owner.to_string(),
                    claimed_by,
                    publisher: m.publisher,
                });
            }
        }
        None => {
            tx.execute(
                "INSERT INTO owners (owner, address, claimed_at) VALUES (?1, ?2, ?3)",
                params![owner, m.publisher.to_checksum(None), now],
            )?;
        }
    }
    if existing.is_some() {
        return Err(HubError::VersionExists {
            name: m.name.clone(),
            version: m.version.clone(),
        });
    }

    let new_key = VersionKey::parse(&m.version)?;
    let latest: Option<String> = tx
        .query_row("SELECT latest FROM repos WHERE name = ?1", [&m.name], |r| {
            r.get(0)
        })
        .optional()?;
    match latest {
        None => {
            tx.execute(
                "INSERT INTO repos (name, owner, latest, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![m.name, owner, m.version, now],
            )?;
        }
        Some(latest) => {
            let is_newer = VersionKey::parse(&latest).map_or(true, |old| new_key > old);
            let latest = if is_newer { &m.version } else { &latest };
            tx.execute(
                "UPDATE repos SET latest = ?2, updated_at = ?3 WHERE name = ?1",
                params![m.name, latest, now],
            )?;
        }
    }
    let json = serde_json::to_string(signed)
        .map_err(|e| HubError::Database(format!("encoding a manifest: {e}")))?;
    tx.execute(
        "INSERT INTO versions
            (name, version, digest, publisher, description, task, nonce, manifest, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            m.name,
            m.version,
            m.model.digest().as_slice(),
            m.publisher.to_checksum(None),
            m.description,
            m.task,
            m.nonce.0.as_slice(),
            json,
            now,
        ],
    )?;
    for tag in &m.tags {
        tx.execute(
            "INSERT OR IGNORE INTO version_tags (name, version, tag) VALUES (?1, ?2, ?3)",
            params![m.name, m.version, tag],
        )?;
    }
    let record = version_record(&tx, &m.name, &m.version)?
        .ok_or_else(|| HubError::Database("a version row vanished".into()))?;
    tx.commit()?;
    Ok(record)
}

/// A version's full record.
pub(crate) fn version_record(
    tx: &Connection,
    name: &str,
    version: &str,
) -> Result<Option<VersionRecord>, HubError> {
    let row = tx
        .query_row(
            "SELECT v.manifest, v.published_at, m.size
             FROM versions v JOIN models m ON m.digest = v.digest
             WHERE v.name = ?1 AND v.version = ?2",
            params![name, version],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((json, published_at, size)) = row else {
        return Ok(None);
    };
    let manifest = parse_manifest(&json)?;
    Ok(Some(VersionRecord {
        name: manifest.manifest.name.clone(),
        version: manifest.manifest.version.clone(),
        model: manifest.manifest.model,
        size: u64_of(size),
        publisher: manifest.manifest.publisher,
        published_at: u64_of(published_at),
        manifest,
    }))
}

/// The latest version's name of a repository.
pub(crate) fn latest_version(conn: &Connection, name: &str) -> Result<Option<String>, HubError> {
    Ok(conn
        .query_row("SELECT latest FROM repos WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

/// A repository with its versions, highest first.
pub(crate) fn repo(conn: &Connection, name: &str) -> Result<Option<RepoRecord>, HubError> {
    let row = conn
        .query_row(
            "SELECT owner, latest FROM repos WHERE name = ?1",
            [name],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?;
    let Some((owner, latest)) = row else {
        return Ok(None);
    };
    let latest = version_record(conn, name, &latest)?
        .ok_or_else(|| HubError::Database(format!("{name}'s latest version is missing")))?;
    let mut stmt = conn
        .prepare("SELECT version, digest, publisher, published_at FROM versions WHERE name = ?1")?;
    let rows = stmt.query_map([name], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut versions = Vec::new();
    for row in rows {
        let (version, digest, publisher, published_at) = row?;
        versions.push(VersionSummary {
            version,
            model: digest_of(digest)?,
            publisher: parse_address(&publisher)?,
            published_at: u64_of(published_at),
        });
    }
    versions.sort_by(|a, b| version::highest_first(&a.version, &b.version));
    Ok(Some(RepoRecord {
        name: name.to_string(),
        owner,
        latest,
        versions,
    }))
}

/// Repositories matching a (validated) query, by name.
pub(crate) fn list(conn: &Connection, q: &ListQuery) -> Result<Vec<RepoSummary>, HubError> {
    let text = q.text.as_ref().map(|t| t.to_ascii_lowercase());
    let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    let mut stmt = conn.prepare(
        "SELECT r.name, r.owner, r.updated_at,
                (SELECT COUNT(*) FROM versions c WHERE c.name = r.name),
                v.manifest
         FROM repos r JOIN versions v ON v.name = r.name AND v.version = r.latest
         WHERE (?1 IS NULL OR instr(lower(r.name), ?1) > 0 OR instr(lower(v.description), ?1) > 0)
           AND (?2 IS NULL OR EXISTS (SELECT 1 FROM version_tags t
                                      WHERE t.name = v.name AND t.version = v.version
                                        AND t.tag = ?2))
           AND (?3 IS NULL OR v.task = ?3)
           AND (?4 IS NULL OR r.owner = ?4)
         ORDER BY r.name
         LIMIT ?5 OFFSET ?6",
    )?;
    let rows = stmt.query_map(
        params![
            text,
            q.tag,
            q.task,
            q.owner,
            i64::from(limit),
            i64_of(q.offset, "offset")?
        ],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (name, owner, updated_at, count, json) = row?;
        let m = parse_manifest(&json)?.manifest;
        out.push(RepoSummary {
            name,
            owner,
            latest_version: m.version,
            model: m.model,
            description: m.description,
            task: m.task,
            license: m.license,
            tags: m.tags,
            publisher: m.publisher,
            updated_at: u64_of(updated_at),
            version_count: u64_of(count),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        drop(Catalog::open(&path).unwrap());
        // Re-opening applies nothing twice.
        drop(Catalog::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
        drop(conn);
        let err = Catalog::open(&path).err().expect("newer schema refused");
        assert_eq!(err.code(), "config");
    }
}
