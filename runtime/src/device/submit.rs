//! Submitting recorded dispatches: each submission is one command buffer
//! holding one compute pass, optionally timed with GPU timestamps.

use std::ops::Range;
use std::time::Duration;

use bytemuck::Pod;

use super::batch::{Item, Recorded};
use super::buffers::GpuBuffer;
use super::gpu::Gpu;
use crate::error::Error;

impl Gpu {
    /// Submits a recorded batch (one command buffer, one compute pass) without
    /// waiting.
    pub fn submit(&self, rec: &Recorded) -> Result<(), Error> {
        self.encode_and_submit(&rec.items, None)
    }

    /// Submits dispatches `range` of a recorded batch (one command buffer,
    /// one compute pass) without waiting; an empty range submits nothing.
    pub(crate) fn submit_range(&self, rec: &Recorded, range: Range<usize>) -> Result<(), Error> {
        let items = rec.items.get(range.clone()).ok_or_else(|| Error::Binding {
            kernel: "recorded batch".into(),
            message: format!("no dispatches {range:?} of {}", rec.items.len()),
        })?;
        if items.is_empty() {
            return Ok(());
        }
        self.encode_and_submit(items, None)
    }

    /// Submits a recorded batch and waits for it to finish.
    pub fn run(&self, rec: &Recorded) -> Result<(), Error> {
        self.submit(rec)?;
        self.wait()
    }

    /// Submits a recorded batch with GPU timestamps around its compute pass,
    /// waits, and returns the device time of the pass (`None` without
    /// `TIMESTAMP_QUERY`, in which case it is the same as [`Gpu::run`]).
    pub fn run_timed(&self, rec: &Recorded) -> Result<Option<Duration>, Error> {
        self.run_items_timed(&rec.items)
    }

    /// Like [`Gpu::run_timed`] for dispatch `index` of `rec` alone (in its own
    /// submission): where the time of a batch goes.
    pub(crate) fn run_dispatch_timed(
        &self,
        rec: &Recorded,
        index: usize,
    ) -> Result<Option<Duration>, Error> {
        let item = rec.items.get(index..=index).ok_or_else(|| Error::Binding {
            kernel: "recorded batch".into(),
            message: format!("no dispatch {index}"),
        })?;
        self.run_items_timed(item)
    }

    /// Submits a recorded batch as usual (one command buffer, one compute
    /// pass) with a GPU timestamp before every dispatch and after the last,
    /// waits, and returns each dispatch's device time as it ran among the
    /// others; `None` where the device cannot write timestamps inside a pass
    /// or the batch needs more queries than a query set holds.
    pub(crate) fn run_each_timed(&self, rec: &Recorded) -> Result<Option<Vec<Duration>>, Error> {
        let queries = rec.items.len() + 1;
        if !self.has_timestamps_inside_passes() || queries > wgpu::QUERY_SET_MAX_QUERIES as usize {
            return Ok(None);
        }
        let (set, resolve, staging) = self.timestamp_queries(queries as u32)?;
        let bytes = staging.size;
        self.scoped("submitting timed dispatches", || {
            let mut enc = self.encoder("seam timed dispatches");
            encode_pass(&mut enc, &rec.items, Stamps::Between(&set));
            enc.resolve_query_set(&set, 0..queries as u32, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &staging.buffer, 0, bytes);
            self.queue.submit([enc.finish()]);
        })?;
        let ticks: Vec<u64> = self.read(&staging)?;
        let period = f64::from(self.queue.get_timestamp_period());
        Ok(Some(
            ticks
                .windows(2)
                .map(|w| Duration::from_nanos((w[1].saturating_sub(w[0]) as f64 * period) as u64))
                .collect(),
        ))
    }

    /// Submits `items` with GPU timestamps around their compute pass and waits;
    /// without `TIMESTAMP_QUERY`, submits them untimed.
    fn run_items_timed(&self, items: &[Item]) -> Result<Option<Duration>, Error> {
        if !self.has_timestamps() {
            self.encode_and_submit(items, None)?;
            self.wait()?;
            return Ok(None);
        }
        let (set, resolve, staging) = self.timestamp_queries(2)?;
        self.encode_and_submit(items, Some((&set, &resolve, &staging.buffer)))?;
        let ticks: Vec<u64> = self.read(&staging)?;
        let period = f64::from(self.queue.get_timestamp_period());
        let dt = ticks
            .get(1)
            .zip(ticks.first())
            .map(|(e, b)| e.saturating_sub(*b) as f64 * period)
            .unwrap_or(0.0);
        Ok(Some(Duration::from_nanos(dt as u64)))
    }

    /// A set of `count` timestamp queries, the buffer they resolve into and
    /// the buffer that copy is read back from.
    fn timestamp_queries(
        &self,
        count: u32,
    ) -> Result<(wgpu::QuerySet, wgpu::Buffer, GpuBuffer), Error> {
        let bytes = u64::from(count) * 8;
        self.scoped("creating timestamp queries", || {
            let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("seam timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("seam timestamps resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = GpuBuffer {
                buffer: self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("seam timestamps"),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                size: bytes,
                label: "seam timestamps".into(),
            };
            (set, resolve, staging)
        })
    }

    /// Encodes `items` into one compute pass of one command buffer and submits it.
    fn encode_and_submit<'a>(
        &self,
        items: impl IntoIterator<Item = &'a Item>,
        timing: Option<(&wgpu::QuerySet, &wgpu::Buffer, &wgpu::Buffer)>,
    ) -> Result<(), Error> {
        self.scoped("submitting dispatches", || {
            let mut enc = self.encoder("seam dispatches");
            let stamps = timing.map_or(Stamps::None, |(set, _, _)| Stamps::Around(set));
            encode_pass(&mut enc, items, stamps);
            if let Some((set, resolve, staging)) = timing {
                enc.resolve_query_set(set, 0..2, resolve, 0);
                enc.copy_buffer_to_buffer(resolve, 0, staging, 0, 16);
            }
            self.queue.submit([enc.finish()]);
        })
    }

    /// Submits several recorded batches, in order, as one compute pass, then
    /// reads `count` elements of type `T` at byte `offset` of `buffer` back
    /// ([`Gpu::read_range`]), the copy in the same command buffer as the
    /// dispatches: one submission and one wait for both.
    pub fn run_all_and_read<T: Pod>(
        &self,
        recs: &[&Recorded],
        buffer: &GpuBuffer,
        offset: u64,
        count: usize,
    ) -> Result<Vec<T>, Error> {
        let mut enc = self.encoder("seam dispatches and read-back");
        self.scoped("encoding dispatches", || {
            encode_pass(&mut enc, recs.iter().flat_map(|r| &r.items), Stamps::None)
        })?;
        let staged = self.stage_read::<T>(&mut enc, buffer, offset, count)?;
        self.scoped("submitting dispatches and a read-back", || {
            self.queue.submit([enc.finish()])
        })?;
        self.finish_read(staged)
    }

    pub(super) fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }
}

/// The timestamps a compute pass writes.
#[derive(Clone, Copy)]
enum Stamps<'a> {
    /// None.
    None,
    /// Queries 0 and 1 at the pass's beginning and end.
    Around(&'a wgpu::QuerySet),
    /// Query `i` before dispatch `i`, and one after the last.
    Between(&'a wgpu::QuerySet),
}

/// Encodes `items` into one compute pass, with the timestamps `stamps`.
fn encode_pass<'a>(
    enc: &mut wgpu::CommandEncoder,
    items: impl IntoIterator<Item = &'a Item>,
    stamps: Stamps<'_>,
) {
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("seam"),
        timestamp_writes: match stamps {
            Stamps::Around(set) => Some(wgpu::ComputePassTimestampWrites {
                query_set: set,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            }),
            _ => None,
        },
    });
    let mut count = 0;
    for item in items {
        if let Stamps::Between(set) = stamps {
            pass.write_timestamp(set, count);
        }
        count += 1;
        if item.grid.contains(&0) {
            continue;
        }
        pass.set_pipeline(&item.pipeline.pipeline);
        pass.set_bind_group(0, &item.bind_group, &[]);
        pass.dispatch_workgroups(item.grid[0], item.grid[1], item.grid[2]);
    }
    if let Stamps::Between(set) = stamps {
        pass.write_timestamp(set, count);
    }
}
