//! Many sessions under one root directory: [`Store`] (documented there, as the module is
//! private).

use std::path::{Path, PathBuf};

use turnwal_journal::Error as JError;

use crate::{Journal, Options, RecoveryReport, Result, SessionId, Status};

/// A directory of sessions, one journal each, named by session id: creates, opens, lists,
/// forks and deletes them.
///
/// - **Ids are validated** before they touch a path: exactly 32 lowercase hex digits (what
///   [`SessionId`] prints), so no id can name `..`, a separator or anything outside the root.
/// - **Listing never hides a session**: a damaged one is listed with its status and the reason
///   (`torn` and `corrupt` from the same scan and decision table as an open, `locked` while a
///   writer holds it, `unreadable` if it cannot be read at all). Directories whose names are
///   not session ids, and the trash, are not sessions and are left out.
/// - **Delete is explicit** and moves the session into `<root>/.trash/` (renamed, the root and
///   trash directories fsynced) unless told to purge; a session a writer holds is refused.
///
/// Listing reads each session the way a read-only open does (no lock, no byte changed; the
/// newest snapshot and the segments after it, every frame's checksum checked, so the status is
/// the one an open would find) but does not replay it: it takes the id, creation time, title,
/// message ids and last activity from the events' typed fields (the `session` event, `meta`
/// titles, `message`/`delta` ids, timestamps), without materialising the session or reading a
/// message body.
///
/// ```
/// use turnwal::{Options, SessionStatus, Store};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// let store = Store::open(tmp.path().join("sessions"), Options::default())?;
/// let (id, journal) = store.create()?;
/// journal.append_json(r#"{"kind":"meta","body":{"title":"Refactor the parser"}}"#)?;
/// journal.close()?;
///
/// for entry in store.list()? {
///     let title = entry.title.as_deref().unwrap_or("(untitled)");
///     println!("{} {title}: {} messages [{}]", entry.id, entry.messages, entry.status.as_str());
/// }
/// let (journal, _report) = store.open_session(&id)?; // recovers it as Journal::open does
/// # drop(journal);
/// # assert_eq!(store.list()?[0].status, SessionStatus::Clean);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    opts: Options,
}

/// The state of a listed session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Reads whole.
    Clean,
    /// Ends in a torn tail a writer's open would cut (nothing acknowledged is lost).
    Torn,
    /// Damaged where it matters: a writer's open refuses it.
    Corrupt,
    /// A writer holds it now (what it holds so far is listed).
    Locked,
    /// Could not be read at all (see `problem`).
    Unreadable,
}

impl SessionStatus {
    /// The lowercase name, as `turnwal` prints it (`clean`, `torn`, `corrupt`, `locked`,
    /// `unreadable`).
    ///
    /// ```
    /// assert_eq!(turnwal::SessionStatus::Torn.as_str(), "torn");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Clean => "clean",
            SessionStatus::Torn => "torn",
            SessionStatus::Corrupt => "corrupt",
            SessionStatus::Locked => "locked",
            SessionStatus::Unreadable => "unreadable",
        }
    }
}

/// One session as [`Store::list`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEntry {
    /// The session id (the directory name).
    pub id: String,
    /// The `title` metadata value, if it is a string.
    pub title: Option<String>,
    /// Creation time, ms since the epoch (0 if unreadable).
    pub created_at_ms: i64,
    /// Time of the last stored event, ms since the epoch (0 if unreadable).
    pub last_activity_ms: i64,
    /// Messages in the session (final, partial or rewound).
    pub messages: usize,
    /// Its state.
    pub status: SessionStatus,
    /// Why it is not clean, if it is not.
    pub problem: Option<String>,
    /// The session and seq it was forked from, if it is a fork.
    pub fork_of: Option<(String, u64)>,
}

/// Name of the trash directory under the root.
pub const TRASH_DIR: &str = ".trash";

impl Store {
    /// A store over `root`, created (0700, durably) if missing. `opts` are used for every
    /// session it creates or opens (its `session_id` is ignored: the store chooses ids).
    ///
    /// ```
    /// use turnwal::{Options, Store, SyncPolicy};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let opts = Options { sync: SyncPolicy::Always, ..Options::default() };
    /// let store = Store::open(tmp.path().join("sessions"), opts)?;
    /// assert!(store.root().is_dir());
    /// # Ok(()) }
    /// ```
    pub fn open(root: impl AsRef<Path>, opts: Options) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        crate::create_dir_durably(opts.storage.as_ref(), &root)?;
        Ok(Store { root, opts })
    }

    /// The root directory, as given to [`Store::open`]. See there for an example.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of session `id`, once `id` is validated (32 lowercase hex digits: no id
    /// can name a path outside the root). The session need not exist.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let store = turnwal::Store::open(tmp.path(), Default::default())?;
    /// let dir = store.path_of("0123456789abcdef0123456789abcdef")?;
    /// assert_eq!(dir, store.root().join("0123456789abcdef0123456789abcdef"));
    /// assert!(store.path_of("../etc").is_err());
    /// # Ok(()) }
    /// ```
    pub fn path_of(&self, id: &str) -> Result<PathBuf> {
        valid_id(id)?;
        Ok(self.root.join(id))
    }

    /// Creates a new session with a fresh random id and opens it for writing. Returns the id
    /// and the journal.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let store = turnwal::Store::open(tmp.path(), Default::default())?;
    /// let (id, journal) = store.create()?;
    /// assert_eq!(journal.session().id, id);
    /// assert_eq!(journal.dir(), store.path_of(&id)?);
    /// # Ok(()) }
    /// ```
    pub fn create(&self) -> Result<(String, Journal)> {
        let id = SessionId::random();
        let name = id.to_string();
        let opts = Options {
            create: true,
            session_id: Some(id),
            ..self.opts.clone()
        };
        let (journal, _) = Journal::open(self.root.join(&name), opts)?;
        Ok((name, journal))
    }

    /// Opens session `id` for writing (recovering it as [`Journal::open`] does). Refuses an id
    /// that is not valid or not in the store; never creates one. While another writer holds
    /// the session, fails with `Locked` naming it.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let store = turnwal::Store::open(tmp.path(), Default::default())?;
    /// # let (id, journal) = store.create()?;
    /// # drop(journal);
    /// let (journal, report) = store.open_session(&id)?;
    /// println!("{}: {} events, {:?}", id, report.records, report.status);
    /// # drop(journal);
    /// assert!(store.open_session("ffffffffffffffffffffffffffffffff").is_err()); // no such session
    /// # Ok(()) }
    /// ```
    pub fn open_session(&self, id: &str) -> Result<(Journal, RecoveryReport)> {
        let dir = self.path_of(id)?;
        Journal::open(
            dir,
            Options {
                create: false,
                session_id: None,
                ..self.opts.clone()
            },
        )
    }

    /// Forks session `parent` at `at_seq` into a new session of this store (see
    /// [`Journal::fork`]) and opens it for writing; returns its id.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let store = turnwal::Store::open(tmp.path(), Default::default())?;
    /// let (parent, journal) = store.create()?;
    /// let at = journal.append_json(r#"{"kind":"message","body":{"id":"u1","role":"user"}}"#)?;
    /// let (child, branch) = store.fork(&parent, at)?;
    /// assert_eq!(branch.session().fork_of, Some((parent, at)));
    /// # let _ = child;
    /// # Ok(()) }
    /// ```
    pub fn fork(&self, parent: &str, at_seq: u64) -> Result<(String, Journal)> {
        let from = self.path_of(parent)?;
        let id = SessionId::random();
        let name = id.to_string();
        let opts = Options {
            session_id: Some(id),
            ..self.opts.clone()
        };
        let (journal, _) = Journal::fork(from, at_seq, self.root.join(&name), opts)?;
        Ok((name, journal))
    }

    /// Every session of the store, sorted by id, each with its status: a damaged or locked
    /// session is listed, never hidden. Takes no lock and changes no byte.
    ///
    /// ```
    /// use turnwal::SessionStatus;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let store = turnwal::Store::open(tmp.path(), Default::default())?;
    /// let (id, journal) = store.create()?; // still open: its writer holds the lock
    /// let sessions = store.list()?;
    /// assert_eq!(sessions.len(), 1);
    /// assert_eq!(sessions[0].id, id);
    /// assert_eq!(sessions[0].status, SessionStatus::Locked);
    /// journal.close()?;
    /// assert_eq!(store.list()?[0].status, SessionStatus::Clean);
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> Result<Vec<SessionEntry>> {
        let names = self
            .opts
            .storage
            .list(&self.root)
            .map_err(|e| JError::io("list", &self.root, e))?;
        let mut ids: Vec<String> = names.into_iter().filter(|n| valid_id(n).is_ok()).collect();
        ids.sort();
        Ok(ids.into_iter().map(|id| self.entry(id)).collect())
    }

    fn entry(&self, id: String) -> SessionEntry {
        let dir = self.root.join(&id);
        let locked = turnwal_journal::lock::is_held(&dir);
        let sm = match crate::summary(&dir, &self.opts) {
            Ok(sm) => sm,
            Err(e) => {
                return SessionEntry {
                    id,
                    title: None,
                    created_at_ms: 0,
                    last_activity_ms: 0,
                    messages: 0,
                    status: SessionStatus::Unreadable,
                    problem: Some(e.to_string()),
                    fork_of: None,
                };
            }
        };
        let r = &sm.report;
        let problem = r
            .problems
            .first()
            .map(|p| format!("{} at offset {}: {}", p.file, p.offset, p.reason));
        let status = match (locked, r.status) {
            (true, _) => SessionStatus::Locked,
            (false, Status::Clean) => SessionStatus::Clean,
            (false, Status::TornTail) => SessionStatus::Torn,
            (false, Status::Corrupt) => SessionStatus::Corrupt,
        };
        SessionEntry {
            id,
            title: sm.title,
            created_at_ms: sm.created_at_ms,
            last_activity_ms: sm.last_activity_ms,
            messages: sm.messages,
            status,
            problem,
            fork_of: sm.fork_of,
        }
    }

    /// Deletes session `id`: moves it to `<root>/.trash/<id>.<ms>` or, with `purge`, removes
    /// it for good (after the move, so a crash midway leaves it in the trash, never half
    /// deleted in the listing). Refuses a session a writer holds.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let store = turnwal::Store::open(tmp.path(), Default::default())?;
    /// let (id, journal) = store.create()?;
    /// assert!(store.delete(&id, false).is_err()); // its writer holds it
    /// journal.close()?;
    /// store.delete(&id, false)?; // now in <root>/.trash/
    /// assert!(store.list()?.is_empty());
    /// assert!(store.root().join(turnwal::TRASH_DIR).is_dir());
    /// # Ok(()) }
    /// ```
    pub fn delete(&self, id: &str, purge: bool) -> Result<()> {
        let dir = self.path_of(id)?;
        let st = self.opts.storage.as_ref();
        if !st.exists(&dir).map_err(|e| JError::io("stat", &dir, e))? {
            return Err(JError::NotAJournal {
                dir,
                reason: "no such session in the store".into(),
            }
            .into());
        }
        if turnwal_journal::lock::is_held(&dir) {
            return Err(JError::Locked {
                holder: turnwal_journal::lock::read_holder(st, &dir).unwrap_or_default(),
            }
            .into());
        }
        let trash = self.root.join(TRASH_DIR);
        crate::create_dir_durably(st, &trash)?;
        let to = trash.join(format!("{id}.{}", turnwal_journal::event::now_ms()));
        st.rename(&dir, &to)
            .map_err(|e| JError::io("rename", &dir, e))?;
        for d in [&self.root, &trash] {
            st.sync_dir(d).map_err(|e| JError::io("fsync dir", d, e))?;
        }
        if purge {
            std::fs::remove_dir_all(&to).map_err(|e| JError::io("remove", &to, e))?;
            st.sync_dir(&trash)
                .map_err(|e| JError::io("fsync dir", &trash, e))?;
        }
        Ok(())
    }
}

/// A session id as the store names directories: 32 lowercase hex digits.
fn valid_id(id: &str) -> Result<()> {
    let ok = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(())
    } else {
        Err(turnwal_journal::InputError::new(
            "session id",
            format!("{id:?} is not 32 lowercase hex digits"),
        )
        .into())
    }
}
