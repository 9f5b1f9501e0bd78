//! The write-ahead journal: the log's durable source of truth between tile sync points.
//!
//! Each sequenced batch is one record, appended and `fdatasync`'d once before any entry in it
//! is acknowledged or its checkpoint handed out:
//!
//! ```text
//! "VLJ1" | first_index u64 BE | count u32 BE | body_len u32 BE | body | SHA-256(all before)
//! body = count × (len u32 BE | entry) | cp_len u32 BE | signed checkpoint note
//! ```
//!
//! A crash can tear only the last record (nothing is written after a record until its sync
//! returns), so a bad record followed by nothing but zeroes or end-of-file is a torn tail and
//! is cut off; a bad record followed by data is corruption and is reported, never skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"VLJ1";
const HEADER: usize = 4 + 8 + 4 + 4;
/// The largest record body accepted when reading (the config keeps batches below it).
pub(crate) const MAX_RECORD_BODY: usize = 256 * 1024 * 1024;

/// One journal record: a batch of entries and the checkpoint signed over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub first_index: u64,
    pub entries: Vec<Vec<u8>>,
    pub checkpoint: Vec<u8>,
}

impl Record {
    pub fn end(&self) -> u64 {
        self.first_index + self.entries.len() as u64
    }
}

/// Encodes a record.
pub(crate) fn encode(first_index: u64, entries: &[Vec<u8>], checkpoint: &[u8]) -> Vec<u8> {
    let body_len: usize = entries.iter().map(|e| 4 + e.len()).sum::<usize>() + 4 + checkpoint.len();
    let mut out = Vec::with_capacity(HEADER + body_len + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&first_index.to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    for e in entries {
        out.extend_from_slice(&(e.len() as u32).to_be_bytes());
        out.extend_from_slice(e);
    }
    out.extend_from_slice(&(checkpoint.len() as u32).to_be_bytes());
    out.extend_from_slice(checkpoint);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

fn decode_body(first_index: u64, count: u32, body: &[u8]) -> Option<Record> {
    let mut rest = body;
    let mut take = |n: usize| -> Option<&[u8]> {
        if rest.len() < n {
            return None;
        }
        let (a, b) = rest.split_at(n);
        rest = b;
        Some(a)
    };
    let mut entries = Vec::with_capacity((count as usize).min(1 << 16));
    for _ in 0..count {
        let len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        entries.push(take(len)?.to_vec());
    }
    let cp_len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
    let checkpoint = take(cp_len)?.to_vec();
    if !rest.is_empty() {
        return None;
    }
    Some(Record {
        first_index,
        entries,
        checkpoint,
    })
}

/// What reading a segment found.
pub(crate) struct Segment {
    pub records: Vec<Record>,
    /// Bytes of valid records; anything after is a torn tail to cut.
    pub valid_len: u64,
    /// Whether a torn tail was found.
    pub torn: bool,
}

/// Why a segment could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: bad record at byte {offset} followed by data: corruption, not a torn write")]
    Corrupt { path: PathBuf, offset: u64 },
}

fn rest_is_zero(r: &mut impl Read) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// Reads every valid record of a segment, detecting a torn tail.
pub(crate) fn read_segment(path: &Path) -> Result<Segment, JournalError> {
    let io_err = |source| JournalError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = io::BufReader::new(File::open(path).map_err(io_err)?);
    let file_len = f.get_ref().metadata().map_err(io_err)?.len();
    let mut records = Vec::new();
    let mut offset = 0u64;
    loop {
        if offset == file_len {
            return Ok(Segment {
                records,
                valid_len: offset,
                torn: false,
            });
        }
        let torn = |records| Segment {
            records,
            valid_len: offset,
            torn: true,
        };
        let remaining = file_len - offset;
        if remaining < (HEADER + 32) as u64 {
            return Ok(torn(records));
        }
        let mut header = [0u8; HEADER];
        f.read_exact(&mut header).map_err(io_err)?;
        let first = u64::from_be_bytes(header[4..12].try_into().expect("8 bytes"));
        let count = u32::from_be_bytes(header[12..16].try_into().expect("4 bytes"));
        let body_len = u32::from_be_bytes(header[16..20].try_into().expect("4 bytes")) as usize;
        let declared = (HEADER + body_len + 32) as u64;
        let plausible = &header[..4] == MAGIC && body_len <= MAX_RECORD_BODY;
        if !plausible || declared > remaining {
            // Either the record runs past the end (a torn write) or the header is garbage,
            // which is only a torn tail if nothing but zeroes follows it.
            if plausible
                || (header.iter().all(|&b| b == 0) && rest_is_zero(&mut f).map_err(io_err)?)
            {
                return Ok(torn(records));
            }
            return Err(JournalError::Corrupt {
                path: path.to_owned(),
                offset,
            });
        }
        let mut body = vec![0u8; body_len + 32];
        f.read_exact(&mut body).map_err(io_err)?;
        let (body, digest) = body.split_at(body_len);
        let mut h = Sha256::new();
        h.update(header);
        h.update(body);
        let record = if h.finalize().as_slice() == digest {
            decode_body(first, count, body)
        } else {
            None
        };
        match record {
            Some(r) => {
                records.push(r);
                offset += declared;
            }
            None => {
                if rest_is_zero(&mut f).map_err(io_err)? {
                    return Ok(torn(records));
                }
                return Err(JournalError::Corrupt {
                    path: path.to_owned(),
                    offset,
                });
            }
        }
    }
}

/// The segment files in `dir`, sorted by the first index they start at.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(start) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((start, e.path()));
    }
    out.sort();
    Ok(out)
}

/// The segment file name for a segment starting at `start`.
pub(crate) fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}.wal"))
}

/// An open segment being appended to.
pub(crate) struct Journal {
    file: File,
}

impl Journal {
    /// Creates (or truncates) the segment starting at `start`, durably.
    pub fn create(dir: &Path, start: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(segment_path(dir, start))?;
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
        Ok(Self { file })
    }

    /// Appends an encoded record and waits until it is on stable storage.
    pub fn append(&mut self, record: &[u8]) -> io::Result<()> {
        self.file.write_all(record)?;
        // fdatasync: the data and the file length, which is what reading it back needs.
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), 0).unwrap();
        let r1 = encode(0, &[b"a".to_vec(), b"bc".to_vec()], b"cp1");
        let r2 = encode(2, &[vec![9; 1000]], b"cp2");
        j.append(&r1).unwrap();
        j.append(&r2).unwrap();
        let path = segment_path(dir.path(), 0);
        let seg = read_segment(&path).unwrap();
        assert_eq!(seg.records.len(), 2);
        assert_eq!(seg.records[1].entries[0].len(), 1000);
        assert!(!seg.torn);

        let full = fs::read(&path).unwrap();
        // Every truncation inside the second record is a torn tail keeping the first.
        for cut in r1.len()..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let seg = read_segment(&path).unwrap();
            assert_eq!(seg.records.len(), 1, "cut at {cut}");
            assert_eq!(seg.valid_len, r1.len() as u64);
            assert_eq!(seg.torn, cut > r1.len());
        }
        // Zeroes after a record (a file extended but never written): torn tail.
        let mut z = r1.clone();
        z.extend_from_slice(&[0; 100]);
        fs::write(&path, &z).unwrap();
        assert!(read_segment(&path).unwrap().torn);
        // A flipped bit in the first record with the second intact after it: corruption.
        let mut bad = full.clone();
        bad[HEADER + 2] ^= 1;
        fs::write(&path, &bad).unwrap();
        assert!(matches!(
            read_segment(&path),
            Err(JournalError::Corrupt { .. })
        ));
        // A flipped bit in the last record: torn (it was never acknowledged).
        let mut bad = full.clone();
        let last = bad.len() - 40;
        bad[last] ^= 1;
        fs::write(&path, &bad).unwrap();
        let seg = read_segment(&path).unwrap();
        assert!(seg.torn && seg.records.len() == 1);
    }
}
