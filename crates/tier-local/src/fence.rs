//! The fence file: one invalidation generation per repository, moved by every write, in a file
//! that needs no free space to change.
//!
//! ```text
//! <dir>/fences       HEADER bytes, then SLOTS slots of SLOT bytes, all little-endian:
//!   header           b"ghcache fences\0\0", format u32, slots u32, epoch u64, floor_ms u64, zeros
//!   slot             generation u64, invalidated_at_ms u64, last id u64, before_ms u64
//! ```
//!
//! A slot names the invalidation that moved it last ([`InvalidationId`], 0 for none) and when
//! the latest of the others finished (`before_ms`): an entry made elsewhere that names that last
//! invalidation as the last its producer had seen need not wait out the clock skew after it
//! ([`FenceState::admits`]). Format 1 had neither; such a file is replaced as a damaged one is,
//! without the warning.
//!
//! An answer about a [`Resource`] of a repository is covered by three slots: slot 0, which
//! covers everything (a write whose repository is unknown); the repository's own slot
//! (a write whose effects are not known); and the slot of the resource in that repository
//! (`issue create` moves the issues slot of its repository, and the one search slot that all
//! searches share). Slots are picked by a hash of what they cover; two things that share a slot
//! fence each other: at worst an extra miss, never a wrong answer. An index row keeps the
//! [`Mark`] its answer was fetched under (a hash of the epoch and the generations of its three
//! slots); the row is served only while the fence still reads that mark.
//!
//! Why not a table in the index: a write must move the fence when the disk is full, and SQLite
//! cannot commit then. This file is written once at full size (real zeros, not a sparse file)
//! and a move overwrites 16 bytes in place, which needs no new blocks on file systems that write
//! in place (ext4, xfs, tmpfs). Where even that fails (a read-only mount), the move goes to an
//! overflow file in the user's state directory (`$XDG_STATE_HOME/ghcache/`, else
//! `~/.local/state/ghcache/`), which readers consult too and the next process that can write
//! the cache folds back in.
//!
//! Readers hold a shared `flock` on the primary file while they read both files, and movers an
//! exclusive one, so nobody sees half a move or a fold.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ghcache_core::policy::{Resource, Resources};
use ghcache_core::{now_ms, FenceState, InvalidationId, Mark, Selector, TierError};
use rustix::fs::{flock, FlockOperation};

/// File name of the fence file inside the cache directory.
pub(crate) const FENCES: &str = "fences";

const MAGIC: &[u8; 16] = b"ghcache fences\0\0";
const FORMAT: u32 = 2;
const HEADER: usize = 64;
const SLOT: usize = 32;
/// Enough that a team's repositories rarely share a slot; the file is 128 KiB.
const SLOTS: usize = 4096;
const LEN: u64 = (HEADER + SLOTS * SLOT) as u64;

/// Which fences an invalidation moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// Every repository's.
    All,
    /// Everything about one repository.
    Repo(&'a str),
    /// Some resources of one repository (and what is not classified there).
    Resources(&'a str, Resources),
}

impl<'a> Target<'a> {
    /// The target of a selector; `None` for one key, which has no fence of its own.
    pub(crate) fn of(selector: &'a Selector) -> Option<Self> {
        match selector {
            Selector::All => Some(Target::All),
            Selector::Repo(repo) => Some(Target::Repo(repo)),
            Selector::Resources { repo, resources } => Some(Target::Resources(repo, *resources)),
            Selector::Key(_) => None,
        }
    }

    /// The slots to move.
    fn slots(self) -> Vec<usize> {
        match self {
            Target::All => vec![0],
            // Searches span repositories: every write may change them (see `Selector`).
            Target::Repo(repo) => vec![repo_slot(repo), resource_slot(repo, Resource::Search)],
            Target::Resources(repo, resources) => resources
                .iter()
                .chain([Resource::Other, Resource::Search])
                .map(|resource| resource_slot(repo, resource))
                .collect(),
        }
    }
}

/// The slots that cover an answer about `resource` of `repo`: everything, the repository, the
/// resource.
fn slots_of(repo: &str, resource: Resource) -> [usize; 3] {
    [0, repo_slot(repo), resource_slot(repo, resource)]
}

/// Where the fences of one cache directory are, and the operations on them.
#[derive(Debug, Clone)]
pub struct Fences {
    primary: PathBuf,
    overflow: Option<PathBuf>,
}

/// Where a move was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// In the cache directory's fence file.
    InCache,
    /// In the overflow file: the cache directory could not be written.
    InOverflow,
}

/// One file's header and the slots that cover an answer.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    epoch: u64,
    floor_ms: u64,
    slots: [Slot; 3],
}

/// One slot: how often it moved, when last, by which invalidation, and when the latest of the
/// others finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    generation: u64,
    at_ms: u64,
    /// The invalidation that moved it last; 0 when not known by an id.
    last: u64,
    before_ms: u64,
}

impl Slot {
    fn decode(bytes: &[u8]) -> Slot {
        let u64_at = |at: usize| {
            let mut n = [0u8; 8];
            n.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(n)
        };
        Slot {
            generation: u64_at(0),
            at_ms: u64_at(8),
            last: u64_at(16),
            before_ms: u64_at(24),
        }
    }

    fn encode(self) -> [u8; SLOT] {
        let mut out = [0u8; SLOT];
        for (at, n) in [self.generation, self.at_ms, self.last, self.before_ms]
            .into_iter()
            .enumerate()
        {
            out[at * 8..at * 8 + 8].copy_from_slice(&n.to_le_bytes());
        }
        out
    }

    /// The slot after invalidation `id` finished at `at_ms`, without its generation's step.
    /// A time never moves back: an invalidation older than the last one only raises
    /// `before_ms`; the same one again only its time.
    fn record(mut self, at_ms: u64, id: u64) -> Slot {
        if id != 0 && id == self.last {
            self.at_ms = self.at_ms.max(at_ms);
        } else if at_ms >= self.at_ms {
            self.before_ms = self.before_ms.max(self.at_ms);
            self.at_ms = at_ms;
            self.last = id;
        } else {
            self.before_ms = self.before_ms.max(at_ms);
        }
        self
    }

    /// Both slots' moves in one (folding the overflow file into the cache's).
    fn merge(self, other: Slot) -> Slot {
        let mut merged = self.record(other.at_ms, other.last);
        merged.before_ms = merged.before_ms.max(other.before_ms);
        merged.generation = self.generation.saturating_add(other.generation);
        merged
    }
}

impl Fences {
    /// The fences of the cache at `dir`.
    pub fn new(dir: &Path) -> Fences {
        Fences {
            primary: dir.join(FENCES),
            overflow: overflow_path(dir),
        }
    }

    /// Makes the fence file if it is missing or not one, in a cache directory that can be
    /// written. Returns a warning when an existing cache had to be given a new one.
    ///
    /// # Behavior
    /// `had_index`: the cache already held entries. Then a new fence file cannot know which
    /// invalidations came before it, so it refuses entries made elsewhere before now (its floor),
    /// and the entries stored under the old file no longer match its new epoch: they are
    /// fetched again. Costs one `stat` when the file is there.
    pub(crate) fn ensure(&self, had_index: bool) -> io::Result<Option<String>> {
        match std::fs::metadata(&self.primary) {
            Ok(meta) if meta.len() == LEN && self.check_header().is_ok() => return Ok(None),
            Ok(_) if self.is_format_1() => {
                // An earlier release's file: replaced, with a floor, as a damaged one is; an
                // upgrade is no news to the user.
                self.create(true, true)?;
                return Ok(None);
            }
            Ok(_) => {
                self.create(true, true)?;
                return Ok(Some(format!(
                    "the cache's fence file {} was damaged; started a new one (cached answers \
                     will be fetched again)",
                    self.primary.display()
                )));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        self.create(had_index, false)?;
        Ok(None)
    }

    fn is_format_1(&self) -> bool {
        let mut header = [0u8; 20];
        File::open(&self.primary)
            .and_then(|file| file.read_exact_at(&mut header, 0))
            .is_ok_and(|()| &header[..16] == MAGIC && header[16..20] == 1u32.to_le_bytes())
    }

    fn check_header(&self) -> io::Result<()> {
        let file = File::open(&self.primary)?;
        read_header(&file).map(drop)
    }

    /// Writes a new fence file at full size beside the old one and moves it into place.
    fn create(&self, floor: bool, replace: bool) -> io::Result<()> {
        let dir = self.primary.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!("{FENCES}.tmp-{}", unique()));
        let floor_ms = if floor { now_ms() } else { 0 };
        let written = write_new(&tmp, floor_ms).and_then(|()| {
            if replace {
                std::fs::rename(&tmp, &self.primary)
            } else {
                // Never over a file another process made meanwhile: it may already hold moves.
                match std::fs::hard_link(&tmp, &self.primary) {
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                    other => other,
                }
            }
        });
        let _ = std::fs::remove_file(&tmp);
        written
    }

    /// The fence of `repo` now.
    ///
    /// # Errors
    /// The fence file is missing, damaged or unreadable: the caller must neither serve nor store
    /// anything about the repository.
    pub fn state(&self, repo: &str, resource: Resource) -> io::Result<FenceState> {
        let slots = slots_of(repo, resource);
        let file = File::open(&self.primary)?;
        flock(&file, FlockOperation::LockShared).map_err(io::Error::from)?;
        let primary = read_slots(&file, slots)?;
        let overflow = match &self.overflow {
            Some(path) => match File::open(path) {
                Ok(over) => read_slots(&over, slots)?,
                Err(err) if err.kind() == io::ErrorKind::NotFound => Reading::default(),
                Err(err) => return Err(err),
            },
            None => Reading::default(),
        };
        drop(file);
        let mut hasher = blake3::Hasher::new_derive_key("ghcache fence mark v1");
        hasher.update(&primary.epoch.to_le_bytes());
        // Not the overflow file's epoch: making that file must not change every mark.
        for slot in primary.slots.iter().chain(&overflow.slots) {
            hasher.update(&slot.generation.to_le_bytes());
        }
        let mut mark = [0u8; 8];
        mark.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        let slots: Vec<Slot> = primary
            .slots
            .iter()
            .chain(&overflow.slots)
            .copied()
            .collect();
        Ok(state_of(
            Mark(u64::from_le_bytes(mark)),
            &slots,
            primary.floor_ms,
        ))
    }

    /// Moves the fences of `target`, as of `at_ms` (this machine's clock: now for a write this
    /// machine saw finish; earlier for one GitHub told of, such as the event that started a job).
    ///
    /// # Behavior
    /// Every mark of `target` changes, so the local answers it covers are never served again,
    /// whenever they were fetched; entries made elsewhere are judged against `at_ms` (never
    /// moved back from a later invalidation).
    ///
    /// In the cache's fence file when it can be written (in place: no free space needed), else
    /// in the overflow file. Synced to disk before it returns: a crash right after a write must
    /// not bring the old answers back.
    ///
    /// # Errors
    /// Neither file could be written; the caller must tell the user that answers about the
    /// repository may be out of date.
    pub(crate) fn move_for(
        &self,
        target: Target<'_>,
        at_ms: u64,
        id: InvalidationId,
    ) -> io::Result<Moved> {
        let slots = target.slots();
        let in_cache = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.primary)
            .and_then(|file| {
                flock(&file, FlockOperation::LockExclusive).map_err(io::Error::from)?;
                read_header(&file)?;
                bump(&file, &slots, at_ms, id)
            });
        let cache_err = match in_cache {
            Ok(()) => return Ok(Moved::InCache),
            Err(err) => err,
        };
        let Some(overflow) = &self.overflow else {
            return Err(cache_err);
        };
        // Readers hold the primary file's lock while they read the overflow file: take it, so
        // that nobody reads the two halves of this move apart. A read-only file can be locked.
        let guard = File::open(&self.primary).ok();
        if let Some(file) = &guard {
            flock(file, FlockOperation::LockExclusive).map_err(io::Error::from)?;
        }
        let file = open_overflow(overflow).map_err(|over_err| {
            io::Error::new(
                over_err.kind(),
                format!("{cache_err}; and in {}: {over_err}", overflow.display()),
            )
        })?;
        bump(&file, &slots, at_ms, id)?;
        drop(guard);
        Ok(Moved::InOverflow)
    }

    /// Moves the fences that `selector` covers: some resources of a repository, a whole
    /// repository, or all of them for [`Selector::All`] and for one key (which has no fence of its
    /// own). For a caller that cannot
    /// open the cache's index; [`crate::Tier`]'s invalidation does this and drops the rows too.
    ///
    /// # Errors
    /// Neither the fence file nor its overflow file could be written; the caller must tell the
    /// user that answers about the repository may be out of date.
    pub fn invalidate(&self, selector: &Selector) -> io::Result<Moved> {
        self.invalidate_at(selector, now_ms())
    }

    /// [`Fences::invalidate`] for a write that finished at `at_ms` (every mark it covers
    /// changes; entries made elsewhere are judged against `at_ms`), known to every machine as
    /// the invalidation of `selector` issued at `at_ms`.
    ///
    /// # Errors
    /// As [`Fences::invalidate`].
    pub fn invalidate_at(&self, selector: &Selector, at_ms: u64) -> io::Result<Moved> {
        let id = InvalidationId::of(selector, at_ms);
        self.move_for(Target::of(selector).unwrap_or(Target::All), at_ms, id)
    }

    /// Folds moves recorded in the overflow file into the cache's fence file and removes the
    /// overflow file. A no-op (one failed `open`) when there is none.
    pub(crate) fn fold_overflow(&self) -> io::Result<()> {
        let Some(path) = &self.overflow else {
            return Ok(());
        };
        let over = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.primary)?;
        flock(&file, FlockOperation::LockExclusive).map_err(io::Error::from)?;
        read_header(&file)?;
        read_header(&over)?;
        let mut slots = vec![0u8; SLOTS * SLOT];
        over.read_exact_at(&mut slots, HEADER as u64)?;
        for (index, moved) in slots.chunks_exact(SLOT).enumerate() {
            let moved = Slot::decode(moved);
            if moved.generation == 0 {
                continue;
            }
            let offset = (HEADER + index * SLOT) as u64;
            let mut here = [0u8; SLOT];
            file.read_exact_at(&mut here, offset)?;
            // The sum is larger than any generation this slot had: no mark handed out before
            // the fold can match after it.
            let folded = Slot::decode(&here).merge(moved);
            file.write_all_at(&folded.encode(), offset)?;
        }
        file.sync_data()?;
        std::fs::remove_file(path)
    }
}

impl ghcache_core::Fence for Fences {
    fn read(&self, repo: &str, resource: Resource) -> Result<FenceState, TierError> {
        self.state(repo, resource)
            .map_err(|err| TierError::Unavailable {
                tier: crate::config::NAME,
                reason: format!("cannot read {}: {err}", self.primary.display()),
            })
    }
}

/// The slot of a whole repository.
fn repo_slot(repo: &str) -> usize {
    slot_named(&["repository", repo])
}

/// The slot of a resource of a repository; all searches share one, whatever their repository.
fn resource_slot(repo: &str, resource: Resource) -> usize {
    match resource {
        Resource::Search => slot_named(&["search"]),
        other => slot_named(&["resource", repo, other.name()]),
    }
}

/// The slot a hash of `parts` picks: never 0, which is everyone's.
fn slot_named(parts: &[&str]) -> usize {
    let mut hasher = blake3::Hasher::new_derive_key("ghcache fence slot v2");
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    1 + (u64::from_le_bytes(n) % (SLOTS as u64 - 1)) as usize
}

/// `$XDG_STATE_HOME/ghcache/fences-<hash of dir>`, else under `~/.local/state`.
fn overflow_path(dir: &Path) -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|home| home.join(".local/state"))
        })?;
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let hash = blake3::hash(absolute.as_os_str().as_encoded_bytes());
    Some(
        state
            .join("ghcache")
            .join(format!("fences-{}", &hash.to_hex()[..16])),
    )
}

/// The fence that `slots` (those covering an answer, in both files) and the file's floor make.
///
/// The last invalidation is the slot moved latest; if the floor is as late, none (a new file
/// knows of no invalidation by name). Everything else counts as "before" it: other slots'
/// last moves (unless by the same invalidation, which moves several slots) and each slot's
/// own earlier ones.
fn state_of(mark: Mark, slots: &[Slot], floor_ms: u64) -> FenceState {
    let latest = slots.iter().copied().max_by_key(|slot| slot.at_ms);
    let invalidated_at_ms = latest.map_or(0, |slot| slot.at_ms).max(floor_ms);
    let last = latest
        .filter(|slot| slot.last != 0 && slot.at_ms > floor_ms)
        .map(|slot| slot.last);
    let before_last_ms = slots
        .iter()
        .map(|slot| match last {
            Some(id) if slot.last == id => slot.before_ms,
            _ => slot.at_ms,
        })
        .chain([floor_ms])
        .max()
        .unwrap_or(0);
    FenceState {
        mark,
        invalidated_at_ms,
        last: last.map(InvalidationId),
        before_last_ms,
    }
}

fn read_header(file: &File) -> io::Result<(u64, u64)> {
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, 0)?;
    let u32_at = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let u64_at = |at: usize| {
        let mut n = [0u8; 8];
        n.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(n)
    };
    if &header[..16] != MAGIC || u32_at(16) != FORMAT || u32_at(20) as usize != SLOTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a ghcache fence file",
        ));
    }
    Ok((u64_at(24), u64_at(32)))
}

fn read_slots(file: &File, slots: [usize; 3]) -> io::Result<Reading> {
    let (epoch, floor_ms) = read_header(file)?;
    let mut reading = Reading {
        epoch,
        floor_ms,
        ..Reading::default()
    };
    let mut bytes = [0u8; SLOT];
    for (into, slot) in reading.slots.iter_mut().zip(slots) {
        file.read_exact_at(&mut bytes, (HEADER + slot * SLOT) as u64)?;
        *into = Slot::decode(&bytes);
    }
    Ok(reading)
}

/// Adds one to the generation of each of `slots` and records invalidation `id` at `at_ms`
/// ([`Slot::record`]). The caller holds the exclusive lock.
fn bump(file: &File, slots: &[usize], at_ms: u64, id: InvalidationId) -> io::Result<()> {
    for slot in slots {
        let offset = (HEADER + slot * SLOT) as u64;
        let mut bytes = [0u8; SLOT];
        file.read_exact_at(&mut bytes, offset)?;
        let mut moved = Slot::decode(&bytes).record(at_ms, id.0);
        moved.generation = moved.generation.saturating_add(1);
        file.write_all_at(&moved.encode(), offset)?;
    }
    file.sync_data()
}

/// A name part no other writer uses at the same time: threads of one process make files too.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}-{}", std::process::id(), now_ms())
}

/// A new fence file at `path`: header, then every slot zero, written out in full.
fn write_new(path: &Path, floor_ms: u64) -> io::Result<()> {
    let mut epoch = [0u8; 8];
    getrandom::fill(&mut epoch).map_err(|e| io::Error::other(e.to_string()))?;
    let mut bytes = vec![0u8; LEN as usize];
    bytes[..16].copy_from_slice(MAGIC);
    bytes[16..20].copy_from_slice(&FORMAT.to_le_bytes());
    bytes[20..24].copy_from_slice(&(SLOTS as u32).to_le_bytes());
    bytes[24..32].copy_from_slice(&epoch);
    bytes[32..40].copy_from_slice(&floor_ms.to_le_bytes());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(&bytes)?;
    file.sync_all()
}

/// Opens the overflow file, making it (and its directory, 0700) when missing.
fn open_overflow(path: &Path) -> io::Result<File> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => return Ok(file),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", unique()));
    let made = write_new(&tmp, 0).and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    made?;
    OpenOptions::new().read(true).write(true).open(path)
}

#[cfg(test)]
mod tests;
