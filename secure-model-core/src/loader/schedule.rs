//! Which range goes next: files are started in order, up to `file_concurrency` with ranges
//! still to fetch; a file's first range (object size check and stream header) goes alone, its
//! other ranges once the header is known, each file at most `cap` ranges at a time; among
//! ready files the one with the fewest ranges in flight goes first. Pure bookkeeping.

use super::ranges::SegmentRange;

/// One file's ranges and their progress.
#[derive(Debug)]
pub(crate) struct FileRanges {
    ranges: Vec<SegmentRange>,
    cap: usize,
    next: usize,
    in_flight: usize,
    done: usize,
}

impl FileRanges {
    /// `ranges` of a file, at most `cap` of them in flight.
    pub(crate) fn new(ranges: Vec<SegmentRange>, cap: usize) -> Self {
        Self {
            ranges,
            cap: cap.max(1),
            next: 0,
            in_flight: 0,
            done: 0,
        }
    }

    fn started(&self) -> bool {
        self.next > 0
    }

    fn to_dispatch(&self) -> bool {
        self.next < self.ranges.len()
    }
}

/// The dispatch state of a pull.
#[derive(Debug)]
pub(crate) struct Schedule {
    files: Vec<FileRanges>,
    file_concurrency: usize,
    next_file: usize,
}

impl Schedule {
    /// A schedule of `files`, starting at most `file_concurrency` files with ranges to fetch.
    pub(crate) fn new(files: Vec<FileRanges>, file_concurrency: usize) -> Self {
        Self {
            files,
            file_concurrency: file_concurrency.max(1),
            next_file: 0,
        }
    }

    /// The file whose range goes next, given which files have their header (`opened`).
    fn pick(&self, opened: &dyn Fn(usize) -> bool) -> Option<usize> {
        let fetching = self
            .files
            .iter()
            .filter(|f| f.started() && f.to_dispatch())
            .count();
        if fetching < self.file_concurrency && self.next_file < self.files.len() {
            return Some(self.next_file);
        }
        self.files
            .iter()
            .enumerate()
            .filter(|(i, f)| f.started() && f.to_dispatch() && f.in_flight < f.cap && opened(*i))
            .min_by_key(|(i, f)| (f.in_flight, *i))
            .map(|(i, _)| i)
    }

    /// Whether a range could be dispatched now.
    pub(crate) fn ready(&self, opened: &dyn Fn(usize) -> bool) -> bool {
        self.pick(opened).is_some()
    }

    /// The next range to fetch, marked in flight: `(file index, range)`.
    pub(crate) fn next(&mut self, opened: &dyn Fn(usize) -> bool) -> Option<(usize, SegmentRange)> {
        let i = self.pick(opened)?;
        if i == self.next_file {
            self.next_file += 1;
        }
        let f = self.files.get_mut(i)?;
        let range = f.ranges.get(f.next)?.clone();
        f.next += 1;
        f.in_flight += 1;
        Some((i, range))
    }

    /// A range of file `i` finished; `true` when it was the file's last.
    pub(crate) fn finished(&mut self, i: usize) -> bool {
        match self.files.get_mut(i) {
            Some(f) => {
                f.in_flight = f.in_flight.saturating_sub(1);
                f.done += 1;
                f.done == f.ranges.len()
            }
            None => false,
        }
    }

    /// Whether every range of every file finished.
    pub(crate) fn complete(&self) -> bool {
        self.files.iter().all(|f| f.done == f.ranges.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(n: u64) -> Vec<SegmentRange> {
        (0..n)
            .map(|i| SegmentRange {
                first: i,
                count: 1,
                ciphertext: i..i + 1,
                plaintext_offset: i,
            })
            .collect()
    }

    #[test]
    fn first_range_alone_then_spread_over_files() {
        let mut s = Schedule::new(
            vec![FileRanges::new(ranges(3), 8), FileRanges::new(ranges(3), 8)],
            2,
        );
        let closed = |_: usize| false;
        // Both files start with their first range; nothing else before a header is known.
        assert_eq!(s.next(&closed).map(|(i, r)| (i, r.first)), Some((0, 0)));
        assert_eq!(s.next(&closed).map(|(i, r)| (i, r.first)), Some((1, 0)));
        assert!(!s.ready(&closed));
        let open = |_: usize| true;
        assert_eq!(s.next(&open).map(|(i, r)| (i, r.first)), Some((0, 1)));
        assert_eq!(s.next(&open).map(|(i, r)| (i, r.first)), Some((1, 1)));
        assert!(!s.finished(0));
        assert_eq!(s.next(&open).map(|(i, r)| (i, r.first)), Some((0, 2)));
        assert_eq!(s.next(&open).map(|(i, r)| (i, r.first)), Some((1, 2)));
        assert!(s.next(&open).is_none());
        for f in [0, 1, 1, 1] {
            s.finished(f);
        }
        assert!(!s.complete());
        assert!(s.finished(0));
        assert!(s.complete());
    }

    #[test]
    fn caps_and_file_concurrency() {
        let mut s = Schedule::new(
            vec![
                FileRanges::new(ranges(4), 1),
                FileRanges::new(ranges(1), 1),
                FileRanges::new(ranges(1), 1),
            ],
            1,
        );
        let open = |_: usize| true;
        assert_eq!(s.next(&open).map(|(i, _)| i), Some(0));
        // File 0 is capped at one in flight, and only one file may be fetching.
        assert!(s.next(&open).is_none());
        s.finished(0);
        assert_eq!(s.next(&open).map(|(i, r)| (i, r.first)), Some((0, 1)));
        s.finished(0);
        s.next(&open);
        s.finished(0);
        // Its last range is dispatched: the next file may start.
        assert_eq!(s.next(&open).map(|(i, r)| (i, r.first)), Some((0, 3)));
        assert_eq!(s.next(&open).map(|(i, _)| i), Some(1));
    }
}
