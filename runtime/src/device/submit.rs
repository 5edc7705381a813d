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

    /// Submits `items` with GPU timestamps around their compute pass and waits;
    /// without `TIMESTAMP_QUERY`, submits them untimed.
    fn run_items_timed(&self, items: &[Item]) -> Result<Option<Duration>, Error> {
        if !self.has_timestamps() {
            self.encode_and_submit(items, None)?;
            self.wait()?;
            return Ok(None);
        }
        let (set, resolve, staging) = self.scoped("creating timestamp queries", || {
            let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("seam timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("seam timestamps resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = GpuBuffer {
                buffer: self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("seam timestamps"),
                    size: 16,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                size: 16,
                label: "seam timestamps".into(),
            };
            (set, resolve, staging)
        })?;
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

    /// Encodes `items` into one compute pass of one command buffer and submits it.
    fn encode_and_submit<'a>(
        &self,
        items: impl IntoIterator<Item = &'a Item>,
        timing: Option<(&wgpu::QuerySet, &wgpu::Buffer, &wgpu::Buffer)>,
    ) -> Result<(), Error> {
        self.scoped("submitting dispatches", || {
            let mut enc = self.encoder("seam dispatches");
            encode_pass(&mut enc, items, timing.map(|(set, _, _)| set));
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
            encode_pass(&mut enc, recs.iter().flat_map(|r| &r.items), None)
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

/// Encodes `items` into one compute pass, with timestamps at its beginning
/// and end (queries 0 and 1 of `timestamps`) if given.
fn encode_pass<'a>(
    enc: &mut wgpu::CommandEncoder,
    items: impl IntoIterator<Item = &'a Item>,
    timestamps: Option<&wgpu::QuerySet>,
) {
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("seam"),
        timestamp_writes: timestamps.map(|set| wgpu::ComputePassTimestampWrites {
            query_set: set,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }),
    });
    for item in items {
        if item.grid.contains(&0) {
            continue;
        }
        pass.set_pipeline(&item.pipeline.pipeline);
        pass.set_bind_group(0, &item.bind_group, &[]);
        pass.dispatch_workgroups(item.grid[0], item.grid[1], item.grid[2]);
    }
}
