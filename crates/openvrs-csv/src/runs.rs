//! A sorted multiset of small fixed-size records that keeps bounded memory: past a limit, the
//! records are sorted and written to a temporary file as a run, and the runs are merged when
//! read back in order. This is what lets the targets check find repeats anywhere in a file of
//! any size without its memory growing with the file.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    fs::File,
    io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write},
};

/// A record that can be stored in a run: ordered, copied, and written in `SIZE` bytes.
pub(crate) trait Record: Ord + Copy {
    const SIZE: usize;
    fn write(&self, out: &mut Vec<u8>);
    fn read(bytes: &[u8]) -> Self;
}

impl Record for u64 {
    const SIZE: usize = 8;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn read(b: &[u8]) -> Self {
        u64::from_be_bytes(b.try_into().expect("8 bytes"))
    }
}

impl Record for (u64, u32, u32) {
    const SIZE: usize = 16;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
        out.extend_from_slice(&self.1.to_be_bytes());
        out.extend_from_slice(&self.2.to_be_bytes());
    }
    fn read(b: &[u8]) -> Self {
        (
            u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
            u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
            u32::from_be_bytes(b[12..16].try_into().expect("4 bytes")),
        )
    }
}

/// Records collected in any order, read back sorted.
#[derive(Debug)]
pub(crate) struct Runs<T> {
    limit: usize,
    memory: Vec<T>,
    /// Spilled runs: a file each, sorted, and its record count.
    spilled: Vec<(File, u64)>,
    failed: Option<String>,
}

impl<T: Record + 'static> Runs<T> {
    /// At most `limit` records are kept in memory at once.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            memory: Vec::new(),
            spilled: Vec::new(),
            failed: None,
        }
    }

    pub fn push(&mut self, r: T) {
        self.memory.push(r);
        if self.memory.len() >= self.limit
            && let Err(e) = self.spill()
        {
            self.failed = Some(e.to_string());
            self.memory.clear();
        }
    }

    fn spill(&mut self) -> std::io::Result<()> {
        self.memory.sort_unstable();
        let mut file = tempfile::tempfile()?;
        let mut out = BufWriter::with_capacity(1 << 16, &mut file);
        let mut buf = Vec::with_capacity(T::SIZE);
        for r in &self.memory {
            buf.clear();
            r.write(&mut buf);
            out.write_all(&buf)?;
        }
        out.flush()?;
        drop(out);
        file.seek(SeekFrom::Start(0))?;
        self.spilled.push((file, self.memory.len() as u64));
        self.memory.clear();
        Ok(())
    }

    /// Every record in order; an error when a temporary file could not be written or read.
    pub fn sorted(mut self) -> Result<Box<dyn Iterator<Item = T>>, String> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.memory.sort_unstable();
        if self.spilled.is_empty() {
            return Ok(Box::new(self.memory.into_iter()));
        }
        let mut readers: Vec<RunReader<T>> = self
            .spilled
            .into_iter()
            .map(|(f, n)| RunReader::new(f, n))
            .collect();
        let memory = self.memory;
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(x) = r.next_record().map_err(|e| e.to_string())? {
                heap.push(Reverse((x, i)));
            }
        }
        let mut in_memory = memory.into_iter().peekable();
        Ok(Box::new(std::iter::from_fn(move || {
            let from_heap = heap.peek().map(|Reverse((x, _))| *x);
            match (from_heap, in_memory.peek().copied()) {
                (Some(h), Some(m)) if m < h => in_memory.next(),
                (None, Some(_)) => in_memory.next(),
                (None, None) => None,
                (Some(_), _) => {
                    let Reverse((x, i)) = heap.pop()?;
                    // A read error ends this run early; the caller sees fewer records, and the
                    // store's own constraints still refuse what the check missed.
                    if let Ok(Some(next)) = readers[i].next_record() {
                        heap.push(Reverse((next, i)));
                    }
                    Some(x)
                }
            }
        })))
    }
}

struct RunReader<T> {
    input: BufReader<File>,
    left: u64,
    buf: Vec<u8>,
    _t: std::marker::PhantomData<T>,
}

impl<T: Record> RunReader<T> {
    fn new(file: File, records: u64) -> Self {
        Self {
            input: BufReader::with_capacity(1 << 16, file),
            left: records,
            buf: vec![0; T::SIZE],
            _t: std::marker::PhantomData,
        }
    }

    fn next_record(&mut self) -> std::io::Result<Option<T>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.input.read_exact(&mut self.buf)?;
        Ok(Some(T::read(&self.buf)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn reads_back_sorted_whatever_the_limit(
            items in proptest::collection::vec(any::<u64>(), 0..500),
            limit in 1usize..64,
        ) {
            let mut runs = Runs::new(limit);
            for x in &items {
                runs.push(*x);
            }
            let got: Vec<u64> = runs.sorted().unwrap().collect();
            let mut want = items.clone();
            want.sort_unstable();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn wide_records_too(
            items in proptest::collection::vec(any::<(u64, u32, u32)>(), 0..300),
            limit in 1usize..40,
        ) {
            let mut runs = Runs::new(limit);
            for x in &items {
                runs.push(*x);
            }
            let got: Vec<_> = runs.sorted().unwrap().collect();
            let mut want = items.clone();
            want.sort_unstable();
            prop_assert_eq!(got, want);
        }
    }
}
