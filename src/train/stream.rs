//! Training on data larger than the device: the training set is streamed in shards.
//!
//! The graph is compiled with a `data` input of `shard_steps * batch_size` rows instead of the
//! whole set. At each shard boundary the host draws the next `shard_steps` batches from the
//! same [`Batcher`] a resident run uses, gathers their rows (in batch order, repeats included)
//! from a [`RowSource`] into one shard buffer, writes it into the program's `data` input, and
//! feeds batch `j` of the shard with `idx = j*batch .. (j+1)*batch` and its labels unchanged.
//! The graph therefore sees exactly the rows a resident run gathers, in the same order, and the
//! parameters after N steps are bitwise those of a resident run (tests/streaming.rs).
//!
//! Double buffering: while the device trains shard s, a background thread (one
//! `std::thread` per shard, joined at the next boundary) reads, gathers, standardises and packs
//! shard s+1. Batches are a deterministic function of the seed, so drawing them a shard ahead
//! changes nothing; the step counter, not the batcher, is what a checkpoint records, and a
//! resume ([`super::Trainer::continue_from`]) rebuilds the batcher from its initial state and
//! starts a fresh shard at the resumed step, wherever in a shard that falls.
//!
//! Images are packed 4 bytes per u32 word like the resident set ([`super::pack_u8`]): the
//! shard's bytes are gathered first and then packed as one run, so rows whose size is not a
//! multiple of 4 continue across words exactly as the gather kernel reads them.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::data::{Batch, Batcher, RowSource, ShardRows};
use crate::error::{Error, Result};

/// A shard ready for the device: its batches and its rows packed as the `data` input takes them.
pub(super) struct Shard {
    pub batches: Vec<Batch>,
    pub data: Packed,
}

/// The `data` input's contents: u32 words (u8 images 4 per word, f16 windows 2 per word) or f32.
pub(super) enum Packed {
    Words(Vec<u32>),
    Floats(Vec<f32>),
}

/// Gathers and packs the rows of `batches` (run on the background thread).
fn prepare(source: &dyn RowSource, batches: Vec<Batch>, f16: bool, rows_per_shard: usize) -> Result<Shard> {
    let mut rows: Vec<u32> = batches.iter().flat_map(|b| b.indices.iter().copied()).collect();
    // a shard shorter than the compiled one (never at present: every shard is full) is padded
    // with its first row so the buffer has the compiled size
    if let Some(&first) = rows.first() {
        rows.resize(rows_per_shard, first);
    }
    let mut out = ShardRows::F32(Vec::new());
    source.gather(&rows, &mut out)?;
    let data = match out {
        ShardRows::U8(bytes) => Packed::Words(super::pack_u8(&bytes)),
        ShardRows::F32(values) if f16 => Packed::Words(super::pack_f16(&values, "streamed shard", source.dim())?),
        ShardRows::F32(values) => Packed::Floats(values),
    };
    Ok(Shard { batches, data })
}

/// The streaming state of a trainer: the source, the current shard and the one being prepared.
pub(super) struct Streamer {
    source: Arc<dyn RowSource>,
    pub shard_steps: usize,
    batch_size: usize,
    f16: bool,
    /// The batcher as built (a resume rebuilds the position from it).
    initial: Batcher,
    /// The batches of the shard on the device, and how many were fed.
    pub current: Vec<Batch>,
    pub pos: usize,
    pending: Option<JoinHandle<Result<Shard>>>,
}

impl Streamer {
    pub fn new(source: Arc<dyn RowSource>, shard_steps: usize, batcher: &Batcher, f16: bool) -> Result<Self> {
        if shard_steps == 0 {
            return Err(Error::Invalid("--shard-steps must be at least 1".into()));
        }
        Ok(Streamer {
            source,
            shard_steps,
            batch_size: batcher.batch_size(),
            f16,
            initial: batcher.clone(),
            current: Vec::new(),
            pos: 0,
            pending: None,
        })
    }

    pub fn rows(&self) -> usize {
        self.shard_steps * self.batch_size
    }

    /// Forgets the shards drawn ahead and puts `batcher` at `steps` batches from its start.
    pub fn restart(&mut self, batcher: &mut Batcher, steps: u64) {
        if let Some(h) = self.pending.take() {
            let _ = h.join();
        }
        self.current.clear();
        self.pos = 0;
        *batcher = self.initial.clone();
        batcher.skip(steps);
    }

    /// Draws the next shard's batches and starts preparing it in the background.
    fn spawn_next(&mut self, batcher: &mut Batcher) {
        let batches: Vec<Batch> = (0..self.shard_steps).map(|_| batcher.next_batch()).collect();
        let (source, f16, rows) = (Arc::clone(&self.source), self.f16, self.rows());
        self.pending = Some(std::thread::spawn(move || prepare(&*source, batches, f16, rows)));
    }

    /// At a shard boundary: the next shard's packed rows (waiting for its preparation; the
    /// first one is prepared now), with the one after it started in the background; its
    /// batches become `current`. `None` inside a shard.
    pub fn next_shard(&mut self, batcher: &mut Batcher) -> Result<Option<Packed>> {
        if self.pos < self.current.len() {
            return Ok(None);
        }
        if self.pending.is_none() {
            self.spawn_next(batcher);
        }
        let shard = self
            .pending
            .take()
            .expect("a shard is pending")
            .join()
            .map_err(|_| Error::Invalid("the thread preparing a data shard panicked".into()))??;
        self.spawn_next(batcher);
        self.pos = 0;
        self.current = shard.batches;
        Ok(Some(shard.data))
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        if let Some(h) = self.pending.take() {
            let _ = h.join();
        }
    }
}
