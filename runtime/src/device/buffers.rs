//! Device buffers: creation, upload, sub-range views and read-back.

use bytemuck::Pod;

use super::gpu::Gpu;
use crate::error::Error;

/// A storage buffer on the device (usable as a kernel binding, a copy source
/// and a copy destination).
#[derive(Clone, Debug)]
pub struct GpuBuffer {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) size: u64,
    pub(crate) label: String,
}

impl GpuBuffer {
    /// Size in bytes as requested (the allocation may be rounded up to 16).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The label given at creation.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The underlying wgpu buffer.
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// A view of the whole buffer.
    pub fn view(&self) -> BufferView<'_> {
        BufferView {
            buffer: self,
            offset: 0,
            size: None,
        }
    }

    /// A view of `size` bytes from `offset` (for binding one part of a split
    /// weight). The offset must be a multiple of the device's
    /// `min_storage_buffer_offset_alignment`; checked when bound.
    pub fn slice(&self, offset: u64, size: u64) -> BufferView<'_> {
        BufferView {
            buffer: self,
            offset,
            size: Some(size),
        }
    }
}

/// A buffer, or a byte range of one, to bind to a kernel.
#[derive(Copy, Clone, Debug)]
pub struct BufferView<'a> {
    /// The buffer.
    pub buffer: &'a GpuBuffer,
    /// Byte offset.
    pub offset: u64,
    /// Byte length; `None` for the rest of the buffer.
    pub size: Option<u64>,
}

impl<'a> From<&'a GpuBuffer> for BufferView<'a> {
    fn from(b: &'a GpuBuffer) -> Self {
        b.view()
    }
}

impl BufferView<'_> {
    /// Bytes covered by the view.
    pub fn len(&self) -> u64 {
        self.size
            .unwrap_or(self.buffer.size.saturating_sub(self.offset))
    }

    /// Whether the view covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A copy to the host encoded but not yet read ([`Gpu::stage_read`]); no
/// staging buffer when nothing is read.
pub(super) struct Staged<T> {
    staging: Option<wgpu::Buffer>,
    label: String,
    count: usize,
    elem: std::marker::PhantomData<T>,
}

/// Rounds a byte size up to the allocation granule (16 bytes, at least 16).
fn alloc_size(size: u64) -> u64 {
    size.max(16).div_ceil(16) * 16
}

impl Gpu {
    /// Creates a zero-filled storage buffer of `size` bytes.
    pub fn create_buffer(&self, label: &str, size: u64) -> Result<GpuBuffer, Error> {
        if size > self.limits.max_buffer_size {
            return Err(Error::Buffer {
                label: label.into(),
                message: format!(
                    "{size} bytes exceed the device's maximum buffer size of {} bytes",
                    self.limits.max_buffer_size
                ),
            });
        }
        let buffer = self.scoped(&format!("creating buffer `{label}`"), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: alloc_size(size),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuBuffer {
            buffer,
            size,
            label: label.into(),
        })
    }

    /// Creates a storage buffer holding `data`.
    pub fn upload<T: Pod>(&self, label: &str, data: &[T]) -> Result<GpuBuffer, Error> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buf = self.create_buffer(label, bytes.len() as u64)?;
        self.write(&buf, 0, data)?;
        Ok(buf)
    }

    /// Writes `data` into `buffer` at byte `offset` (ordered before later submits).
    pub fn write<T: Pod>(&self, buffer: &GpuBuffer, offset: u64, data: &[T]) -> Result<(), Error> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if bytes.is_empty() {
            return Ok(());
        }
        if offset % 4 != 0 || offset + bytes.len() as u64 > alloc_size(buffer.size) {
            return Err(Error::Buffer {
                label: buffer.label.clone(),
                message: format!(
                    "cannot write {} bytes at offset {offset} into {} bytes",
                    bytes.len(),
                    buffer.size
                ),
            });
        }
        // write_buffer needs a multiple of 4 bytes; pad the tail.
        let padded;
        let bytes = if bytes.len() % 4 != 0 {
            let mut v = bytes.to_vec();
            v.resize(bytes.len().div_ceil(4) * 4, 0);
            padded = v;
            &padded[..]
        } else {
            bytes
        };
        self.scoped(&format!("writing buffer `{}`", buffer.label), || {
            self.queue.write_buffer(&buffer.buffer, offset, bytes)
        })
    }

    /// Copies the whole buffer back to the host (waits for all submitted work).
    pub fn read<T: Pod>(&self, buffer: &GpuBuffer) -> Result<Vec<T>, Error> {
        let elem = std::mem::size_of::<T>() as u64;
        let n = buffer.size.checked_div(elem).unwrap_or(0);
        self.read_range(buffer, 0, n as usize)
    }

    /// Copies `count` elements of type `T` starting at byte `offset` back to the host.
    pub fn read_range<T: Pod>(
        &self,
        buffer: &GpuBuffer,
        offset: u64,
        count: usize,
    ) -> Result<Vec<T>, Error> {
        let mut enc = self.encoder("seam readback");
        let staged = self.stage_read::<T>(&mut enc, buffer, offset, count)?;
        self.scoped("submitting a read-back", || {
            self.queue.submit([enc.finish()])
        })?;
        self.finish_read(staged)
    }

    /// Encodes the copy of `count` elements of type `T` at byte `offset` of
    /// `buffer` into a new staging buffer (checked to lie inside `buffer`).
    pub(super) fn stage_read<T: Pod>(
        &self,
        enc: &mut wgpu::CommandEncoder,
        buffer: &GpuBuffer,
        offset: u64,
        count: usize,
    ) -> Result<Staged<T>, Error> {
        let bytes = (count * std::mem::size_of::<T>()) as u64;
        let copy = bytes.div_ceil(4) * 4;
        if offset % 4 != 0 || offset + copy > alloc_size(buffer.size) {
            return Err(Error::Readback {
                label: buffer.label.clone(),
                message: format!(
                    "{bytes} bytes at offset {offset} are outside the buffer of {} bytes",
                    buffer.size
                ),
            });
        }
        let staging = (bytes > 0)
            .then(|| {
                self.scoped("creating a staging buffer", || {
                    let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("seam staging"),
                        size: copy,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    });
                    enc.copy_buffer_to_buffer(&buffer.buffer, offset, &staging, 0, copy);
                    staging
                })
            })
            .transpose()?;
        Ok(Staged {
            staging,
            label: buffer.label.clone(),
            count,
            elem: std::marker::PhantomData,
        })
    }

    /// Waits for the submission holding `staged`'s copy and reads it out.
    pub(super) fn finish_read<T: Pod>(&self, staged: Staged<T>) -> Result<Vec<T>, Error> {
        let Some(staging) = staged.staging else {
            return Ok(Vec::new());
        };
        let (count, bytes) = (staged.count, staged.count * std::mem::size_of::<T>());
        let fail = |message: String| Error::Readback {
            label: staged.label.clone(),
            message,
        };
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| fail(e.to_string()))?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Err(_) => return Err(fail("the map callback never ran".into())),
        }
        let out = {
            let view = slice.get_mapped_range().map_err(|e| fail(e.to_string()))?;
            let raw: &[u8] = &view[..bytes];
            let mut out: Vec<T> = vec![T::zeroed(); count];
            bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(raw);
            out
        };
        staging.unmap();
        self.check()?;
        self.count_read_back(bytes as u64);
        Ok(out)
    }
}
