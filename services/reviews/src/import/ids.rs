//! Compact per-id memory: what the importer remembers about every id it has seen, in a few bits or
//! bytes per id of the id *range* (not per row), so memory stays flat however long the files are.
//!
//! Ids below 2³² live in pages of 4,096 entries allocated on first touch (a dense legacy id range
//! costs exactly its entries; a sparse one costs a page per touched 4,096-id block). Ids at or
//! above 2³² are rare (the legacy files never have them) and go to a hash map, one entry per id.

use std::collections::{HashMap, HashSet};

use super::rejects::Reason;

const PAGE_BITS: u32 = 12;
const PAGE: usize = 1 << PAGE_BITS;
/// Ids (or word indexes) from here on are kept in the hash map.
const FAR: u64 = 1 << 32;

/// A sparse array indexed by id: pages for ids below 2³², a hash map above.
#[derive(Debug, Default)]
pub struct PagedVec<T> {
    pages: Vec<Option<Box<[T]>>>,
    far: HashMap<u64, T>,
}

impl<T: Copy + Default> PagedVec<T> {
    /// The value at `id`; `T::default()` where nothing was set.
    pub fn get(&self, id: u64) -> T {
        if id >= FAR {
            return self.far.get(&id).copied().unwrap_or_default();
        }
        let (page, slot) = split(id);
        match self.pages.get(page) {
            Some(Some(p)) => p[slot],
            _ => T::default(),
        }
    }

    /// A mutable reference to the value at `id`, allocating its page if needed.
    pub fn entry(&mut self, id: u64) -> &mut T {
        if id >= FAR {
            return self.far.entry(id).or_default();
        }
        let (page, slot) = split(id);
        if self.pages.len() <= page {
            self.pages.resize_with(page + 1, || None);
        }
        let p = self.pages[page].get_or_insert_with(|| vec![T::default(); PAGE].into_boxed_slice());
        &mut p[slot]
    }

    pub fn set(&mut self, id: u64, value: T) {
        *self.entry(id) = value;
    }

    /// Bytes held (pages, page directory, an estimate for the hash map).
    pub fn heap_bytes(&self) -> usize {
        let pages = self.pages.iter().flatten().count();
        pages * PAGE * size_of::<T>()
            + self.pages.capacity() * size_of::<Option<Box<[T]>>>()
            + self.far.capacity() * (size_of::<u64>() + size_of::<T>() + 8)
    }
}

fn split(id: u64) -> (usize, usize) {
    // Both fit: id < 2³² here.
    ((id >> PAGE_BITS) as usize, (id as usize) & (PAGE - 1))
}

/// One bit per id.
#[derive(Debug, Default)]
pub struct IdSet {
    words: PagedVec<u64>,
}

impl IdSet {
    pub fn contains(&self, id: u64) -> bool {
        self.words.get(id >> 6) & (1 << (id & 63)) != 0
    }

    /// Adds `id`; returns whether it was new.
    pub fn insert(&mut self, id: u64) -> bool {
        let word = self.words.entry(id >> 6);
        let bit = 1 << (id & 63);
        let new = *word & bit == 0;
        *word |= bit;
        new
    }

    pub fn heap_bytes(&self) -> usize {
        self.words.heap_bytes()
    }
}

/// What the import knows of a parent id (a review or a characteristic), in one byte.
///
/// Bit 7: the row is in the database. Bit 6: the id was claimed by a row of this file (its first
/// occurrence). Bits 0–5: that row's outcome, 0 = accepted, otherwise the [`Reason`] it was
/// rejected for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// In neither the file nor the database.
    Missing,
    /// Usable: accepted from the file or already in the database.
    Present { song: u64 },
    /// Only in the file, and rejected for this reason.
    Rejected(Reason),
}

const IN_DB: u8 = 0x80;
const CLAIMED: u8 = 0x40;
const OUTCOME: u8 = 0x3f;

/// Parent ids (reviews or characteristics): a state byte and the song (4 bytes) per id.
#[derive(Debug, Default)]
pub struct ParentIndex {
    state: PagedVec<u8>,
    song: SongMap,
}

impl ParentIndex {
    /// Records a row already in the database.
    pub fn add_existing(&mut self, id: u64, song: u64) {
        *self.state.entry(id) |= IN_DB;
        self.song.set(id, song);
    }

    /// Claims `id` for a row of the file; `false` when an earlier row of the file claimed it.
    pub fn claim(&mut self, id: u64) -> bool {
        let state = self.state.entry(id);
        if *state & CLAIMED != 0 {
            return false;
        }
        *state |= CLAIMED;
        true
    }

    pub fn in_db(&self, id: u64) -> bool {
        self.state.get(id) & IN_DB != 0
    }

    /// Records the outcome of the row that claimed `id`: accepted with its song, or rejected.
    pub fn settle(&mut self, id: u64, outcome: Result<u64, Reason>) {
        match outcome {
            Ok(song) => {
                // A row already in the database keeps the database's song.
                if !self.in_db(id) {
                    self.song.set(id, song);
                }
            }
            Err(reason) => *self.state.entry(id) |= reason as u8 & OUTCOME,
        }
    }

    pub fn lookup(&self, id: u64) -> Parent {
        let state = self.state.get(id);
        if state & IN_DB != 0 || (state & CLAIMED != 0 && state & OUTCOME == 0) {
            Parent::Present {
                song: self.song.get(id),
            }
        } else if state & CLAIMED != 0 {
            Reason::from_u8(state & OUTCOME).map_or(Parent::Missing, Parent::Rejected)
        } else {
            Parent::Missing
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.state.heap_bytes() + self.song.heap_bytes()
    }
}

/// Song ids in 4 bytes per entry; the rare song id that does not fit goes to a side map.
#[derive(Debug, Default)]
struct SongMap {
    small: PagedVec<u32>,
    large: HashMap<u64, u64>,
}

impl SongMap {
    fn set(&mut self, id: u64, song: u64) {
        match u32::try_from(song) {
            Ok(s) if s != u32::MAX => self.small.set(id, s),
            _ => {
                self.small.set(id, u32::MAX);
                self.large.insert(id, song);
            }
        }
    }

    fn get(&self, id: u64) -> u64 {
        match self.small.get(id) {
            u32::MAX => self.large.get(&id).copied().unwrap_or(0),
            s => u64::from(s),
        }
    }

    fn heap_bytes(&self) -> usize {
        self.small.heap_bytes() + self.large.capacity() * 24
    }
}

/// Which characteristics each review has rated, to reject a second rating of the same one.
///
/// A rating is only accepted when its characteristic belongs to the review's song, so it is enough
/// to number each song's characteristics (0, 1, 2, … in the order they are met: [`Ranks`]) and keep
/// a 16-bit mask per review (2 bytes per review id). A song with more than 16 characteristics is
/// unusual; pairs past the 16th go to a hash set.
#[derive(Debug, Default)]
pub struct RatedPairs {
    masks: PagedVec<u16>,
    overflow: HashSet<(u64, u64)>,
}

impl RatedPairs {
    /// Records that `review` rated `characteristic` (its song's `rank`-th); `false` if it had.
    pub fn insert(&mut self, review: u64, characteristic: u64, rank: u8) -> bool {
        if rank < 16 {
            let mask = self.masks.entry(review);
            let bit = 1u16 << rank;
            let new = *mask & bit == 0;
            *mask |= bit;
            new
        } else {
            self.overflow.insert((review, characteristic))
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.masks.heap_bytes() + self.overflow.capacity() * 24
    }
}

/// Each characteristic's number within its song (1 byte per characteristic id, 1 per song id).
#[derive(Debug, Default)]
pub struct Ranks {
    of_characteristic: PagedVec<u8>,
    next_of_song: PagedVec<u8>,
}

impl Ranks {
    /// Numbers a characteristic of `song` that has none yet (255 = "many").
    pub fn assign(&mut self, characteristic: u64, song: u64) {
        let next = self.next_of_song.entry(song);
        let rank = *next;
        *next = next.saturating_add(1);
        self.of_characteristic.set(characteristic, rank);
    }

    pub fn get(&self, characteristic: u64) -> u8 {
        self.of_characteristic.get(characteristic)
    }

    pub fn heap_bytes(&self) -> usize {
        self.of_characteristic.heap_bytes() + self.next_of_song.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paged_vec_reads_defaults_where_nothing_was_set() {
        let mut v = PagedVec::<u32>::default();
        v.set(5, 7);
        v.set(1 << 40, 9);
        assert_eq!((v.get(5), v.get(6), v.get(1_000_000)), (7, 0, 0));
        assert_eq!((v.get(1 << 40), v.get((1 << 40) + 1)), (9, 0));
    }

    #[test]
    fn an_id_set_costs_one_bit_per_id_of_the_range() {
        let mut s = IdSet::default();
        for id in 1..=1_000_000 {
            assert!(s.insert(id));
        }
        assert!(!s.insert(500));
        assert!(s.contains(1_000_000) && !s.contains(1_000_001));
        assert!(
            s.heap_bytes() < 1_000_000 / 8 + 64 * 1024,
            "{}",
            s.heap_bytes()
        );
    }

    #[test]
    fn a_parent_is_present_rejected_or_missing() {
        let mut p = ParentIndex::default();
        assert!(p.claim(1));
        p.settle(1, Ok(40));
        assert!(p.claim(2));
        p.settle(2, Err(Reason::BadRating));
        p.add_existing(3, 41);
        assert!(!p.claim(1), "the first occurrence claims the id");
        assert_eq!(p.lookup(1), Parent::Present { song: 40 });
        assert_eq!(p.lookup(2), Parent::Rejected(Reason::BadRating));
        assert_eq!(p.lookup(3), Parent::Present { song: 41 });
        assert_eq!(p.lookup(4), Parent::Missing);
    }

    #[test]
    fn a_song_id_beyond_32_bits_is_kept_exactly() {
        let mut p = ParentIndex::default();
        p.add_existing(1, 1 << 40);
        assert_eq!(p.lookup(1), Parent::Present { song: 1 << 40 });
    }

    #[test]
    fn a_review_rates_each_characteristic_once() {
        let mut pairs = RatedPairs::default();
        assert!(pairs.insert(1, 10, 0));
        assert!(pairs.insert(1, 11, 1));
        assert!(!pairs.insert(1, 10, 0));
        assert!(pairs.insert(2, 10, 0));
        assert!(pairs.insert(1, 99, 200));
        assert!(!pairs.insert(1, 99, 200));
    }
}
