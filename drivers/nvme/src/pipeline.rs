//! Several writes in flight from a small pool of staging buffers.
//!
//! [`WritePipeline`] owns `N` buffers of the window. [`write`](WritePipeline::write)
//! copies the caller's bytes into a free one and submits it with
//! [`Nvme::submit_write`]; when none is free it first waits for the oldest
//! completion. Each buffer belongs to the controller from submission until its
//! completion is reaped, and to the pipeline otherwise: the copy never touches
//! memory the controller may still read.

use paranoid::dma::{DmaBuffer, ToDevice, Window};
use paranoid::mmio::RegisterIo;
use paranoid::pci::ConfigAccess;
use paranoid::time::Clock;

use crate::controller::Nvme;
use crate::error::NvmeError;
use crate::io::Written;

/// A pool of `N` staging buffers feeding pipelined writes (queue depth up to
/// `N`, bounded by [`Nvme::pipeline_depth`]).
pub struct WritePipeline<W: Window, const N: usize> {
    free: [Option<DmaBuffer<W, ToDevice>>; N],
    /// The first write that failed, reported by the next call.
    failed: Option<(u64, NvmeError)>,
}

impl<W: Window, const N: usize> WritePipeline<W, N> {
    /// A pipeline over `buffers`; each write moves at most one buffer's
    /// length (keep it ≤ the namespace's MDTS,
    /// [`NamespaceInfo::max_transfer_bytes`](crate::NamespaceInfo::max_transfer_bytes)).
    pub fn new(buffers: [DmaBuffer<W, ToDevice>; N]) -> Self {
        Self {
            free: buffers.map(Some),
            failed: None,
        }
    }

    /// Bytes one write may carry: the smallest buffer.
    pub fn max_write(&self) -> usize {
        self.free
            .iter()
            .flatten()
            .map(DmaBuffer::len)
            .min()
            .unwrap_or(0)
    }

    /// Copies `data` (a whole number of the namespace's blocks) into a free
    /// buffer and submits a write of it at block `lba`, waiting first for a
    /// completion when every buffer is in flight.
    ///
    /// # Errors
    ///
    /// The error of an earlier write that failed (its first block and its
    /// error, as [`NvmeError`]; later writes are not submitted), or this
    /// one's: [`NvmeError::Misaligned`] for `data` not a whole number of
    /// blocks, [`NvmeError::BadBuffer`] for more than
    /// [`max_write`](Self::max_write), the submission's error, or a wait that
    /// failed.
    pub fn write<R, P, C>(
        &mut self,
        nvme: &mut Nvme<R, P, C, W>,
        lba: u64,
        data: &[u8],
    ) -> Result<(), NvmeError>
    where
        R: RegisterIo,
        P: ConfigAccess,
        C: Clock,
    {
        self.write_while(nvme, lba, data, &mut || {})
    }

    /// [`write`](Self::write), calling `during` on every poll while it waits
    /// for a buffer to come back (the caller's heartbeats; see
    /// [`Nvme::wait_write_while`]).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn write_while<R, P, C>(
        &mut self,
        nvme: &mut Nvme<R, P, C, W>,
        lba: u64,
        data: &[u8],
        during: &mut dyn FnMut(),
    ) -> Result<(), NvmeError>
    where
        R: RegisterIo,
        P: ConfigAccess,
        C: Clock,
    {
        self.check_failed()?;
        let ns = nvme.ready_namespace()?;
        let blocks = ns
            .block_size
            .blocks_in(data.len() as u64)
            .ok_or(NvmeError::Misaligned {
                byte_offset: 0,
                len: data.len() as u64,
                block_size: ns.block_size.bytes(),
            })?;
        // Bounded: N waits at most hand back every buffer in flight.
        for _ in 0..=N {
            if self.free.iter().any(Option::is_some) || nvme.in_flight() == 0 {
                break;
            }
            let done = nvme.wait_write_while(during)?;
            self.give_back(done);
            self.check_failed()?;
        }
        let Some(slot) = self.free.iter_mut().find(|b| b.is_some()) else {
            return Err(NvmeError::QueueFull {
                queue: crate::controller::IO_QID,
            });
        };
        let Some(mut buffer) = slot.take() else {
            return Err(NvmeError::QueueFull {
                queue: crate::controller::IO_QID,
            });
        };
        if buffer.write_bytes(0, data).is_err() {
            let len = buffer.len();
            *slot = Some(buffer);
            return Err(NvmeError::BadBuffer {
                offset: 0,
                needed: data.len() as u64,
                len,
            });
        }
        match nvme.submit_write(lba, blocks, buffer, 0) {
            Ok(_) => Ok(()),
            Err(refused) => {
                *slot = Some(refused.buffer);
                Err(refused.error)
            }
        }
    }

    /// Waits for every write in flight; returns the first failure.
    ///
    /// # Errors
    ///
    /// The first write that failed (or a wait that failed).
    pub fn drain<R, P, C>(&mut self, nvme: &mut Nvme<R, P, C, W>) -> Result<(), NvmeError>
    where
        R: RegisterIo,
        P: ConfigAccess,
        C: Clock,
    {
        self.drain_while(nvme, &mut || {})
    }

    /// [`drain`](Self::drain), calling `during` on every poll (the caller's
    /// heartbeats; see [`Nvme::wait_write_while`]).
    ///
    /// # Errors
    ///
    /// As [`drain`](Self::drain).
    pub fn drain_while<R, P, C>(
        &mut self,
        nvme: &mut Nvme<R, P, C, W>,
        during: &mut dyn FnMut(),
    ) -> Result<(), NvmeError>
    where
        R: RegisterIo,
        P: ConfigAccess,
        C: Clock,
    {
        // Bounded: each pass hands back one write (or ends on an error).
        for _ in 0..=N {
            if nvme.in_flight() == 0 {
                break;
            }
            let done = nvme.wait_write_while(during)?;
            self.give_back(done);
        }
        self.check_failed()
    }

    /// The buffers, once every write was drained (`None` for one still in
    /// the driver's hands).
    pub fn into_buffers(self) -> [Option<DmaBuffer<W, ToDevice>>; N] {
        self.free
    }

    fn give_back(&mut self, done: Written<W>) {
        if let (Err(e), None) = (done.result, self.failed) {
            self.failed = Some((done.lba, e));
        }
        if let Some(slot) = self.free.iter_mut().find(|b| b.is_none()) {
            *slot = Some(done.buffer);
        }
    }

    fn check_failed(&self) -> Result<(), NvmeError> {
        match self.failed {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}
