//! The per-package result cache under the workspace's `target/` directory.
//!
//! A package's diagnostics are a function of its files (the path shown, the path on disk and
//! the bytes), its metadata, the session (configuration and levels) and the linter itself.
//! Every run reads every file anyway (reading 2 MB costs milliseconds; parsing and analysing
//! them costs the rest), so a package whose inputs are unchanged takes its diagnostics from
//! the cache and is not parsed at all; after a one-file change only that file's package is
//! analysed again.
//!
//! An entry (`target/paranoid/cache/<package>-<manifest hash>.json`) is used only when all of
//! these hold, else it is ignored and rewritten:
//! - its format version and the identity of the running linter (version, and the size and
//!   modification time of its executable, so a rebuilt linter never reuses old results);
//! - the session fingerprint (every configuration field and every effective level);
//! - the package metadata;
//! - for each file, in order: both paths, the modification time, the size **and** a 128-bit
//!   hash of the content read in this run (a file rewritten within one mtime tick with the
//!   same size is still seen as changed);
//! - the checksum of the stored diagnostics (a truncated or edited entry is not trusted).
//!
//! Writes go to a temporary file that is renamed into place, so a run that is interrupted
//! or runs concurrently never leaves a half-written entry that passes the checks. Cache
//! errors never fail a run: the package is then analysed as if there were no cache.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Label, Level, PackageInfo, Suggestion};
use crate::source::SourceFile;
use crate::{Session, Stats};

/// Bumped whenever the entry layout or the meaning of a field changes.
const FORMAT: u32 = 1;

/// A 128-bit hash: FNV-1a 64 and SipHash-1-3 (zero keys) of the same bytes, side by side.
#[derive(Clone)]
pub struct Hash128 {
    fnv: u64,
    sip: std::collections::hash_map::DefaultHasher,
}

impl Default for Hash128 {
    fn default() -> Self {
        Self {
            fnv: 0xcbf2_9ce4_8422_2325,
            sip: std::collections::hash_map::DefaultHasher::new(),
        }
    }
}

impl Hash128 {
    /// Feeds `bytes`, then their length (so that `ab`,`c` and `a`,`bc` differ).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for b in bytes {
            self.fnv ^= u64::from(*b);
            self.fnv = self.fnv.wrapping_mul(0x0100_0000_01b3);
        }
        self.sip.write(bytes);
        self.u64(bytes.len() as u64)
    }

    /// Feeds a number.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        for b in v.to_le_bytes() {
            self.fnv ^= u64::from(b);
            self.fnv = self.fnv.wrapping_mul(0x0100_0000_01b3);
        }
        self.sip.write_u64(v);
        self
    }

    /// Feeds a string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// The hash as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.fnv, self.sip.finish())
    }
}

/// One input file as this run saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Path shown in diagnostics.
    pub shown: PathBuf,
    /// Path on disk.
    pub disk: PathBuf,
    /// Modification time, nanoseconds since the Unix epoch (0 when unknown).
    pub mtime_ns: u128,
    /// Size in bytes.
    pub size: u64,
    /// [`Hash128`] of the content.
    pub hash: String,
}

impl FileStamp {
    /// Stamps a file whose content `bytes` was just read from `disk`.
    pub fn new(shown: &Path, disk: &Path, bytes: &[u8]) -> Self {
        let mtime_ns = std::fs::metadata(disk)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Self {
            shown: shown.to_path_buf(),
            disk: disk.to_path_buf(),
            mtime_ns,
            size: bytes.len() as u64,
            hash: Hash128::default().bytes(bytes).hex(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    key: String,
    files: Vec<FileStamp>,
    stats: (usize, usize, usize),
    checksum: String,
    diagnostics: Vec<Stored>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    file: usize,
    lint: String,
    level: Level,
    message: String,
    labels: Vec<Label>,
    help: Option<String>,
    notes: Vec<String>,
    suggestion: Option<Suggestion>,
}

/// The cache directory and what every key shares (linter identity, session fingerprint).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    base: String,
}

impl Cache {
    /// The cache in `dir` for runs of `session` by this executable.
    pub fn new(dir: PathBuf, session: &Session) -> Self {
        let mut h = Hash128::default();
        h.str(env!("CARGO_PKG_VERSION")).u64(u64::from(FORMAT));
        match std::env::current_exe().and_then(std::fs::metadata) {
            Ok(m) => {
                h.u64(m.len());
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                h.u64(t as u64).u64((t >> 64) as u64);
            }
            // Without an identity for the linter, never match an entry of another build.
            Err(_) => {
                h.u64(std::process::id().into());
            }
        }
        h.str(&session.fingerprint());
        Self { dir, base: h.hex() }
    }

    /// The cache directory for the workspace rooted at `root`: `$CARGO_TARGET_DIR` (relative
    /// to `root`) or `root/target`, then `paranoid/cache`.
    pub fn dir_for(root: &Path) -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR")
            .filter(|t| !t.is_empty())
            .map(PathBuf::from)
            .map(|t| if t.is_absolute() { t } else { root.join(t) })
            .unwrap_or_else(|| root.join("target"))
            .join("paranoid")
            .join("cache")
    }

    fn key(&self, info: &PackageInfo, files: &[FileStamp]) -> String {
        let mut h = Hash128::default();
        h.str(&self.base).str(&format!("{info:?}"));
        for f in files {
            h.str(&f.shown.to_string_lossy())
                .str(&f.disk.to_string_lossy())
                .u64(f.mtime_ns as u64)
                .u64((f.mtime_ns >> 64) as u64)
                .u64(f.size)
                .str(&f.hash);
        }
        h.hex()
    }

    fn path(&self, info: &PackageInfo) -> PathBuf {
        let name: String = info
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let tag = Hash128::default()
            .str(&info.manifest_path)
            .str(&info.id)
            .hex();
        self.dir.join(format!("{name}-{}.json", &tag[..16]))
    }

    /// The cached diagnostics of a package whose files are `files` (stamps of this run, and
    /// the texts read), or `None` when there is no entry that passes every check.
    pub fn load(
        &self,
        info: &Arc<PackageInfo>,
        files: &[FileStamp],
        texts: &[Arc<SourceFile>],
    ) -> Option<(Vec<Diagnostic>, Stats)> {
        let bytes = std::fs::read(self.path(info)).ok()?;
        let e: Entry = serde_json::from_slice(&bytes).ok()?;
        if e.format != FORMAT
            || e.key != self.key(info, files)
            || e.files != files
            || e.checksum != checksum(&e.diagnostics)
        {
            return None;
        }
        let mut out = Vec::with_capacity(e.diagnostics.len());
        for s in e.diagnostics {
            let lint = crate::lints::find(&s.lint)?.name;
            let file = texts.get(s.file)?.clone();
            if s.labels.iter().any(|l| l.span.byte_end > file.text.len()) {
                return None;
            }
            out.push(Diagnostic {
                lint,
                level: s.level,
                message: s.message,
                file,
                package: info.clone(),
                labels: s.labels,
                help: s.help,
                notes: s.notes,
                suggestion: s.suggestion,
            });
        }
        let (files, bytes, parse_errors) = e.stats;
        Some((
            out,
            Stats {
                files,
                bytes,
                parse_errors,
                cached: 1,
            },
        ))
    }

    /// Stores a package's diagnostics; failures are ignored (the next run analyses again).
    pub fn store(
        &self,
        info: &PackageInfo,
        files: &[FileStamp],
        texts: &[Arc<SourceFile>],
        diags: &[Diagnostic],
        stats: Stats,
    ) {
        let mut stored = Vec::with_capacity(diags.len());
        for d in diags {
            let Some(file) = texts.iter().position(|t| Arc::ptr_eq(t, &d.file)) else {
                // A diagnostic on a file that is not one of the inputs: do not cache.
                return;
            };
            stored.push(Stored {
                file,
                lint: d.lint.to_string(),
                level: d.level,
                message: d.message.clone(),
                labels: d.labels.clone(),
                help: d.help.clone(),
                notes: d.notes.clone(),
                suggestion: d.suggestion.clone(),
            });
        }
        let e = Entry {
            format: FORMAT,
            key: self.key(info, files),
            files: files.to_vec(),
            stats: (stats.files, stats.bytes, stats.parse_errors),
            checksum: checksum(&stored),
            diagnostics: stored,
        };
        let Ok(json) = serde_json::to_vec(&e) else {
            return;
        };
        let path = self.path(info);
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, json).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn checksum(d: &[Stored]) -> String {
    let json = serde_json::to_vec(d).unwrap_or_default();
    Hash128::default().bytes(&json).hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_sees_every_byte_and_the_boundaries() {
        let h = |parts: &[&str]| {
            let mut h = Hash128::default();
            for p in parts {
                h.str(p);
            }
            h.hex()
        };
        assert_eq!(h(&["abc"]), h(&["abc"]));
        assert_ne!(h(&["abc"]), h(&["abd"]));
        assert_ne!(h(&["ab", "c"]), h(&["a", "bc"]));
        assert_eq!(h(&["x"]).len(), 32);
    }
}
