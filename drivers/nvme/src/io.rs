//! Block I/O on the one I/O queue pair: Read, Write and Flush with PRPs from the
//! window (NVMe 1.4, 4.3 and 6), a bounded per-command timeout, and
//! abort-and-reset recovery.
//!
//! The recovery kernel writes its crash dump with [`Nvme::write_blocks`] from a
//! buffer of the window, reads it back with [`Nvme::read_blocks`] and ends with
//! [`Nvme::flush`]. Blocks outside the namespace are refused before anything is
//! submitted.

use core::time::Duration;

use paranoid::dma::{CpuWrites, DeviceWrites, Direction, DmaBuffer, Iova, ToDevice, Window};
use paranoid::lifecycle::{Lifecycle, ResetKind};
use paranoid::mmio::RegisterIo;
use paranoid::pci::ConfigAccess;
use paranoid::time::{Clock, Deadline};

use crate::command::{admin, nvm, Command};
use crate::controller::{Nvme, State, Which, IO_QID};
use crate::error::NvmeError;
use crate::identify::NamespaceInfo;
use crate::queue::{Completion, NVME_PAGE};

/// PRP entries for one transfer (NVMe 1.4, 4.3): PRP1 may be page-offset; PRP2
/// is the second page, or the address of a list of the remaining pages. Every
/// address is an [`Iova`] of the window until [`Command::prps`] writes it into
/// the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prps<W: Window> {
    pub prp1: Iova<W>,
    pub prp2: Option<Iova<W>>,
    /// The pages the PRP list must hold: `(first page, entries)`.
    pub list: Option<(Iova<W>, usize)>,
}

/// Computes the PRPs for `len` bytes at `addr` (`len` ≥ 1, at most 512 list
/// entries: the caller caps transfers at
/// [`crate::identify::DRIVER_MAX_TRANSFER`]), the list (if any) at `list`.
/// `None` when a page of the transfer lies outside the window.
pub(crate) fn prps_for<W: Window>(addr: Iova<W>, len: u64, list: Iova<W>) -> Option<Prps<W>> {
    let page = NVME_PAGE as u64;
    let first = page - (addr.get() % page);
    // The last byte must be inside the window too.
    addr.offset(len.checked_sub(1)?)?;
    if len <= first {
        return Some(Prps {
            prp1: addr,
            prp2: None,
            list: None,
        });
    }
    let second = addr.offset(first)?;
    let rest = len - first;
    if rest <= page {
        return Some(Prps {
            prp1: addr,
            prp2: Some(second),
            list: None,
        });
    }
    Some(Prps {
        prp1: addr,
        prp2: Some(list),
        list: Some((second, usize::try_from(rest.div_ceil(page)).ok()?)),
    })
}

/// A pipelined write handed back by [`Nvme::reap_write`]: its outcome, and the
/// buffer it owned while the controller could read it.
pub struct Written<W: Window> {
    /// The command identifier [`Nvme::submit_write`] returned.
    pub cid: u16,
    /// First block written (in the namespace's blocks).
    pub lba: u64,
    /// Blocks written.
    pub blocks: u64,
    /// The outcome: `Ok`, the error status, or [`NvmeError::Abandoned`] when
    /// the controller was reset or fenced while it was in flight.
    pub result: Result<(), NvmeError>,
    /// The buffer, no longer visible to the controller.
    pub buffer: DmaBuffer<W, ToDevice>,
}

impl<W: Window> core::fmt::Debug for Written<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Written")
            .field("cid", &self.cid)
            .field("lba", &self.lba)
            .field("blocks", &self.blocks)
            .field("result", &self.result)
            .field("buffer", &self.buffer.iova())
            .finish()
    }
}

/// A pipelined write that was not submitted, with its buffer given back.
pub struct Refused<W: Window> {
    /// Why it was not submitted.
    pub error: NvmeError,
    /// The buffer, untouched by the controller.
    pub buffer: DmaBuffer<W, ToDevice>,
}

impl<W: Window> core::fmt::Debug for Refused<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Refused")
            .field("error", &self.error)
            .field("buffer", &self.buffer.iova())
            .finish()
    }
}

/// A write in flight: the buffer stays here until the completion is reaped
/// (or the controller was reset, `done` then says so).
pub(crate) struct InFlight<W: Window> {
    pub cid: u16,
    pub lba: u64,
    pub blocks: u64,
    pub buffer: DmaBuffer<W, ToDevice>,
    /// The controller was reset or fenced while it was in flight.
    pub abandoned: bool,
}

impl<R, P, C, W> Nvme<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    /// Writes `blocks` blocks (of the namespace's
    /// [`block_size`](NamespaceInfo::block_size)) at block `lba` from `buf`,
    /// starting `offset` bytes in; transfers above the controller's MDTS are
    /// split into several commands.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NotReady`], [`NvmeError::LbaOutOfRange`] (nothing is sent),
    /// [`NvmeError::BadBuffer`], [`NvmeError::Busy`] (pipelined writes in
    /// flight), or a command error: on a timeout or a bad completion the
    /// controller is reset and re-initialized (see
    /// [`is_ready`](Self::is_ready)); when that fails it is fenced.
    pub fn write_blocks<D: CpuWrites>(
        &mut self,
        lba: u64,
        blocks: u64,
        buf: &DmaBuffer<W, D>,
        offset: usize,
    ) -> Result<(), NvmeError> {
        self.transfer::<D, true>(nvm::WRITE, lba, blocks, buf, offset)
    }

    /// Writes the byte extent `byte_offset..byte_offset + len` of the
    /// namespace from `buf` (data `offset` bytes in): [`write_blocks`](Self::write_blocks)
    /// after checking that the extent is aligned to the block size.
    ///
    /// # Errors
    ///
    /// [`NvmeError::Misaligned`] for an extent that does not start and end on
    /// a block boundary, then as [`write_blocks`](Self::write_blocks).
    pub fn write_at<D: CpuWrites>(
        &mut self,
        byte_offset: u64,
        len: u64,
        buf: &DmaBuffer<W, D>,
        offset: usize,
    ) -> Result<(), NvmeError> {
        let (lba, blocks) = self
            .ready_namespace()?
            .byte_extent_to_blocks(byte_offset, len)?;
        self.write_blocks(lba, blocks, buf, offset)
    }

    /// Reads the byte extent `byte_offset..byte_offset + len` into `buf`
    /// (data `offset` bytes in), checked for alignment as
    /// [`write_at`](Self::write_at).
    ///
    /// # Errors
    ///
    /// As [`write_at`](Self::write_at).
    pub fn read_at<D: DeviceWrites>(
        &mut self,
        byte_offset: u64,
        len: u64,
        buf: &mut DmaBuffer<W, D>,
        offset: usize,
    ) -> Result<(), NvmeError> {
        let (lba, blocks) = self
            .ready_namespace()?
            .byte_extent_to_blocks(byte_offset, len)?;
        self.read_blocks(lba, blocks, buf, offset)
    }

    /// [`write_blocks`](Self::write_blocks) with the data-path validation
    /// compiled out (range checks, completion checks): the baseline of the
    /// paranoia-overhead benchmark. Never use it outside that benchmark.
    ///
    /// # Errors
    ///
    /// As [`write_blocks`](Self::write_blocks), minus the validation errors.
    #[cfg(feature = "unchecked-bench")]
    #[doc(hidden)]
    pub fn write_blocks_unchecked_for_bench<D: CpuWrites>(
        &mut self,
        lba: u64,
        blocks: u64,
        buf: &DmaBuffer<W, D>,
        offset: usize,
    ) -> Result<(), NvmeError> {
        self.transfer::<D, false>(nvm::WRITE, lba, blocks, buf, offset)
    }

    /// Reads `blocks` blocks (of the namespace's block size) at block `lba`
    /// into `buf`, starting `offset` bytes in.
    ///
    /// # Errors
    ///
    /// As [`write_blocks`](Self::write_blocks).
    pub fn read_blocks<D: DeviceWrites>(
        &mut self,
        lba: u64,
        blocks: u64,
        buf: &mut DmaBuffer<W, D>,
        offset: usize,
    ) -> Result<(), NvmeError> {
        if mutant!("nvme_reads_fail") {
            return Err(NvmeError::NotReady);
        }
        self.transfer::<D, true>(nvm::READ, lba, blocks, buf, offset)
    }

    /// Pipelined writes this driver can keep in flight: one PRP list page
    /// each, [`Config::max_in_flight`](crate::Config::max_in_flight) clamped
    /// to [`MAX_IN_FLIGHT`](crate::controller::MAX_IN_FLIGHT) and to the I/O
    /// queue depth − 1 granted at init.
    pub fn pipeline_depth(&self) -> usize {
        let queue = usize::from(self.io.depth().saturating_sub(1)).max(1);
        self.prp_pages.min(queue)
    }

    /// Submits a write of `blocks` blocks (of the namespace's block size) at
    /// block `lba` from `buf` (data `offset` bytes in) and returns at once with
    /// its command identifier. The buffer moves into the driver: the controller
    /// may read it until the completion is reaped, and
    /// [`reap_write`](Self::reap_write) (or [`wait_write`](Self::wait_write))
    /// hands it back with the outcome. Up to [`pipeline_depth`](Self::pipeline_depth)
    /// writes may be in flight, each up to the namespace's
    /// [`max_transfer_blocks`](NamespaceInfo::max_transfer_blocks) (MDTS),
    /// each with its own PRP list page.
    ///
    /// Synchronous I/O ([`write_blocks`](Self::write_blocks),
    /// [`flush`](Self::flush), ...) is refused with [`NvmeError::Busy`] while
    /// writes are in flight.
    ///
    /// # Errors
    ///
    /// [`Refused`], with the buffer: [`NvmeError::NotReady`],
    /// [`NvmeError::LbaOutOfRange`], [`NvmeError::BadBuffer`] (also above
    /// MDTS: split it), [`NvmeError::QueueFull`] (pipeline full: reap first).
    ///
    /// # Examples
    ///
    /// A buffer comes back with its completion and may then go out again:
    ///
    /// ```no_run
    /// use paranoid::dma::{DmaBuffer, ToDevice, Window};
    /// use paranoid::{mmio::RegisterIo, pci::ConfigAccess, time::Clock};
    /// use paranoid_nvme::{Nvme, NvmeError};
    /// fn twice<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window>(
    ///     nvme: &mut Nvme<R, P, C, W>,
    ///     buf: DmaBuffer<W, ToDevice>,
    /// ) -> Result<(), NvmeError> {
    ///     nvme.submit_write(0, 8, buf, 0).map_err(|r| r.error)?;
    ///     let done = nvme.wait_write()?; // the controller no longer reads it
    ///     nvme.submit_write(8, 8, done.buffer, 0).map_err(|r| r.error)?;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// A buffer in flight cannot be submitted again, nor written, before its
    /// completion hands it back:
    ///
    /// ```compile_fail,E0382
    /// use paranoid::dma::{DmaBuffer, ToDevice, Window};
    /// use paranoid::{mmio::RegisterIo, pci::ConfigAccess, time::Clock};
    /// use paranoid_nvme::Nvme;
    /// fn twice<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window>(
    ///     nvme: &mut Nvme<R, P, C, W>,
    ///     buf: DmaBuffer<W, ToDevice>,
    /// ) {
    ///     let _ = nvme.submit_write(0, 8, buf, 0);
    ///     let _ = nvme.submit_write(8, 8, buf, 0); // the controller may still read it
    /// }
    /// ```
    ///
    /// ```compile_fail,E0382
    /// use paranoid::dma::{DmaBuffer, ToDevice, Window};
    /// use paranoid::{mmio::RegisterIo, pci::ConfigAccess, time::Clock};
    /// use paranoid_nvme::Nvme;
    /// fn refill<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window>(
    ///     nvme: &mut Nvme<R, P, C, W>,
    ///     mut buf: DmaBuffer<W, ToDevice>,
    /// ) {
    ///     let _ = nvme.submit_write(0, 8, buf, 0);
    ///     let _ = buf.write_bytes(0, b"new data"); // while the device reads the old
    /// }
    /// ```
    ///
    /// And a buffer of another window is not this driver's:
    ///
    /// ```compile_fail,E0308
    /// use paranoid::dma::{DmaBuffer, ToDevice, Window};
    /// use paranoid::{mmio::RegisterIo, pci::ConfigAccess, time::Clock};
    /// use paranoid_nvme::Nvme;
    /// struct Normal;
    /// impl Window for Normal { const NAME: &'static str = "normal"; const BASE: u64 = 0x1000_0000; const SIZE: u64 = 0x10_0000; }
    /// struct Recovery;
    /// impl Window for Recovery { const NAME: &'static str = "recovery"; const BASE: u64 = 0x7f_fff0_0000; const SIZE: u64 = 0x10_0000; }
    /// fn wrong<R: RegisterIo, P: ConfigAccess, C: Clock>(
    ///     nvme: &mut Nvme<R, P, C, Recovery>,
    ///     buf: DmaBuffer<Normal, ToDevice>,
    /// ) {
    ///     let _ = nvme.submit_write(0, 8, buf, 0);
    /// }
    /// ```
    pub fn submit_write(
        &mut self,
        lba: u64,
        blocks: u64,
        buffer: DmaBuffer<W, ToDevice>,
        offset: usize,
    ) -> Result<u16, Refused<W>> {
        match self.try_submit_write(lba, blocks, &buffer, offset) {
            Ok((cid, slot)) => {
                if let Some(s) = self.in_flight.get_mut(slot) {
                    *s = Some(InFlight {
                        cid,
                        lba,
                        blocks,
                        buffer,
                        abandoned: false,
                    });
                    Ok(cid)
                } else {
                    // try_submit_write only returns slots below pipeline_depth.
                    Err(Refused {
                        error: NvmeError::QueueFull { queue: IO_QID },
                        buffer,
                    })
                }
            }
            Err(error) => Err(Refused { error, buffer }),
        }
    }

    fn try_submit_write(
        &mut self,
        lba: u64,
        blocks: u64,
        buf: &DmaBuffer<W, ToDevice>,
        offset: usize,
    ) -> Result<(u16, usize), NvmeError> {
        let ns = self.ready_namespace()?;
        let bytes = check_range(&ns, lba, blocks, buf.len(), offset)?;
        if blocks > u64::from(ns.max_transfer_blocks) {
            return Err(NvmeError::BadBuffer {
                offset,
                needed: bytes,
                len: buf.len(),
            });
        }
        let full = NvmeError::QueueFull { queue: IO_QID };
        let slot = self.io.free_slot().ok_or(full)?;
        let free =
            slot < self.pipeline_depth() && self.in_flight.get(slot).is_some_and(Option::is_none);
        if !free {
            return Err(full);
        }
        let bad_buffer = NvmeError::BadBuffer {
            offset,
            needed: bytes,
            len: buf.len(),
        };
        let addr = buf.iova().offset(offset as u64).ok_or(bad_buffer)?;
        let cmd = self.rw_command(nvm::WRITE, &ns, lba, blocks, addr, slot)?;
        let cid = self.io.submit(&mut self.regs, cmd)?;
        Ok((cid, slot))
    }

    /// Hands back one pipelined write whose outcome is known: one reset or
    /// fenced away, or one whose completion the controller has posted
    /// (validated like every completion). `None` when none is ready yet.
    /// Does not wait.
    ///
    /// # Errors
    ///
    /// [`NvmeError::BadCompletion`] for an entry that fails validation: the
    /// controller is reset (every write in flight is then handed back by the
    /// next calls as [`NvmeError::Abandoned`]); [`NvmeError::NotReady`] when
    /// nothing is in flight and the driver is not ready.
    pub fn reap_write(&mut self) -> Result<Option<Written<W>>, NvmeError> {
        if let Some(w) = self.take_done() {
            return Ok(Some(w));
        }
        if self.state != State::Ready {
            return if self.in_flight() == 0 {
                Err(NvmeError::NotReady)
            } else {
                Ok(None)
            };
        }
        match self.io.poll_once(&mut self.regs) {
            Ok(Some(c)) => Ok(self.complete_write(c)),
            Ok(None) => Ok(None),
            Err(e) => {
                if matches!(e, NvmeError::BadCompletion { .. }) {
                    self.stats.bad_completions += 1;
                }
                self.recover();
                Err(e)
            }
        }
    }

    /// Waits (up to [`Config::io_timeout`](crate::Config::io_timeout)) for a
    /// pipelined write to complete and hands it back. On a timeout the
    /// controller is reset and the writes in flight come back
    /// [`NvmeError::Abandoned`].
    ///
    /// # Errors
    ///
    /// As [`reap_write`](Self::reap_write); [`NvmeError::NotReady`] when
    /// nothing is in flight.
    pub fn wait_write(&mut self) -> Result<Written<W>, NvmeError> {
        self.wait_write_while(&mut || {})
    }

    /// [`wait_write`](Self::wait_write), calling `during` on every poll (the
    /// caller's heartbeats; short, and not touching this controller).
    ///
    /// # Errors
    ///
    /// As [`wait_write`](Self::wait_write).
    pub fn wait_write_while(&mut self, during: &mut dyn FnMut()) -> Result<Written<W>, NvmeError> {
        if let Some(w) = self.take_done() {
            return Ok(w);
        }
        if self.in_flight() == 0 || self.state != State::Ready {
            return Err(NvmeError::NotReady);
        }
        let deadline = Deadline::after(&self.clock, self.config.io_timeout);
        let clock = &self.clock;
        let regs = &mut self.regs;
        let io = &mut self.io;
        let seen = paranoid::poll::try_poll(
            clock,
            deadline,
            || {
                during();
                io.poll_once(regs)
            },
            Option::is_some,
        );
        match seen {
            Ok(Some(c)) => self.complete_write(c).ok_or(NvmeError::NotReady),
            Ok(None) | Err(paranoid::poll::PollError::Timeout(_)) => {
                self.stats.timeouts += 1;
                self.recover();
                self.take_done().ok_or(NvmeError::NotReady)
            }
            Err(paranoid::poll::PollError::Failed(e)) => {
                if matches!(e, NvmeError::BadCompletion { .. }) {
                    self.stats.bad_completions += 1;
                }
                self.recover();
                Err(e)
            }
        }
    }

    /// Pipelined writes submitted and not yet handed back.
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().flatten().count()
    }

    /// Every write in flight is given up (the controller was reset or fenced:
    /// it reads none of their buffers any more); reap hands them back.
    pub(crate) fn abandon_in_flight(&mut self) {
        for w in self.in_flight.iter_mut().flatten() {
            w.abandoned = true;
        }
    }

    fn take_done(&mut self) -> Option<Written<W>> {
        let slot = self
            .in_flight
            .iter_mut()
            .find(|w| w.as_ref().is_some_and(|w| w.abandoned))?;
        let w = slot.take()?;
        Some(Written {
            cid: w.cid,
            lba: w.lba,
            blocks: w.blocks,
            result: Err(NvmeError::Abandoned),
            buffer: w.buffer,
        })
    }

    fn complete_write(&mut self, c: Completion) -> Option<Written<W>> {
        let w = self.in_flight.get_mut(c.slot).and_then(Option::take)?;
        let result = if c.status.is_success() {
            self.stats.commands += 1;
            Ok(())
        } else {
            Err(NvmeError::CommandFailed {
                queue: IO_QID,
                opcode: c.opcode,
                status: c.status,
            })
        };
        Some(Written {
            cid: w.cid,
            lba: w.lba,
            blocks: w.blocks,
            result,
            buffer: w.buffer,
        })
    }

    /// Flushes the volatile write cache of the namespace.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NotReady`] or a command error (with recovery as for writes).
    pub fn flush(&mut self) -> Result<(), NvmeError> {
        self.flush_while(&mut || {})
    }

    /// [`flush`](Self::flush), calling `during` on every poll of its
    /// completion. A flush of a large write-back cache can take seconds (under
    /// QEMU it is the host's `fsync` of the image): `during` keeps the
    /// caller's heartbeats going, as between its own I/Os. It must be short
    /// and must not touch this controller.
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush).
    pub fn flush_while(&mut self, during: &mut dyn FnMut()) -> Result<(), NvmeError> {
        let ns = self.ready_namespace()?;
        self.not_busy()?;
        self.io_command_while::<true>(Command::new(nvm::FLUSH).nsid(ns.nsid), during)
    }

    pub(crate) fn ready_namespace(&self) -> Result<NamespaceInfo, NvmeError> {
        match (self.state, self.namespace) {
            (State::Ready, Some(ns)) => Ok(ns),
            _ => Err(NvmeError::NotReady),
        }
    }

    /// Synchronous I/O waits for its own completion and would drop those of
    /// pipelined writes: refused while any is in flight.
    fn not_busy(&self) -> Result<(), NvmeError> {
        match self.in_flight() {
            0 => Ok(()),
            in_flight => Err(NvmeError::Busy { in_flight }),
        }
    }

    fn transfer<D: Direction, const CHECKED: bool>(
        &mut self,
        opcode: u8,
        lba: u64,
        blocks: u64,
        buf: &DmaBuffer<W, D>,
        offset: usize,
    ) -> Result<(), NvmeError> {
        let ns = self.ready_namespace()?;
        self.not_busy()?;
        let bytes = if CHECKED && !mutant!("nvme_skip_range_check") {
            check_range(&ns, lba, blocks, buf.len(), offset)?
        } else {
            blocks.saturating_mul(u64::from(ns.block_size))
        };
        let bad_buffer = NvmeError::BadBuffer {
            offset,
            needed: bytes,
            len: buf.len(),
        };
        let base = buf.iova().offset(offset as u64).ok_or(bad_buffer)?;
        let per_command = u64::from(ns.max_transfer_blocks);
        let block = u64::from(ns.block_size);
        let mut done = 0u64;
        // At most blocks / per_command + 1 iterations: `done` grows each time.
        while done < blocks {
            let n = (blocks - done).min(per_command);
            let addr = base.offset(done * block).ok_or(bad_buffer)?;
            let slot = self.io.free_slot().unwrap_or(0);
            let cmd = self.rw_command(opcode, &ns, lba + done, n, addr, slot)?;
            self.io_command::<CHECKED>(cmd)?;
            done += n;
        }
        Ok(())
    }

    /// A Read or Write of `blocks` blocks at `lba` from `addr`, its PRP list
    /// (if it needs one) written into the list page of queue slot `slot`.
    fn rw_command(
        &mut self,
        opcode: u8,
        ns: &NamespaceInfo,
        lba: u64,
        blocks: u64,
        addr: Iova<W>,
        slot: usize,
    ) -> Result<Command, NvmeError> {
        let bytes = blocks.saturating_mul(u64::from(ns.block_size));
        let bad = NvmeError::BadBuffer {
            offset: 0,
            needed: bytes,
            len: 0,
        };
        if slot >= self.prp_pages {
            return Err(NvmeError::QueueFull { queue: IO_QID });
        }
        let page = NVME_PAGE as u64;
        let at = slot * NVME_PAGE;
        let list = self.prp_lists.iova().offset(at as u64).ok_or(bad)?;
        let prps = prps_for(addr, bytes, list).ok_or(bad)?;
        if let Some((first, entries)) = prps.list {
            for i in 0..entries {
                let entry = first.offset(i as u64 * page).ok_or(bad)?;
                // The entry's bytes go into the list page here, and only here.
                self.prp_lists.write::<u64>(at + i * 8, entry.get())?;
            }
        }
        Ok(Command::new(opcode)
            .nsid(ns.nsid)
            .prps(prps.prp1, prps.prp2)
            .cdw(10, lba as u32)
            .cdw(11, (lba >> 32) as u32)
            .cdw(12, (blocks - 1) as u32))
    }

    /// Submits one I/O command and waits for it; on a timeout aborts it, and
    /// when the abort does not take, or a completion was bad, resets and
    /// re-initializes the controller.
    fn io_command<const CHECKED: bool>(&mut self, cmd: Command) -> Result<(), NvmeError> {
        self.io_command_while::<CHECKED>(cmd, &mut || {})
    }

    fn io_command_while<const CHECKED: bool>(
        &mut self,
        cmd: Command,
        during: &mut dyn FnMut(),
    ) -> Result<(), NvmeError> {
        let start = self.clock.now_ns();
        let deadline = Deadline::after(&self.clock, self.config.io_timeout);
        let cid = match self.io.submit(&mut self.regs, cmd) {
            Ok(cid) => cid,
            Err(e) => return Err(self.recover_after(e)),
        };
        match self.wait_for_with::<CHECKED>(Which::Io, cid, deadline, during) {
            Ok(Some(c)) if c.status.is_success() => {
                self.stats.commands += 1;
                Ok(())
            }
            Ok(Some(c)) => Err(NvmeError::CommandFailed {
                queue: IO_QID,
                opcode: c.opcode,
                status: c.status,
            }),
            Ok(None) => {
                self.stats.timeouts += 1;
                let aborted = self.abort(cid);
                let recovered = aborted || self.recover();
                Err(NvmeError::CommandTimeout {
                    queue: IO_QID,
                    opcode: cmd.opcode(),
                    cid,
                    waited: Duration::from_nanos(self.clock.now_ns().saturating_sub(start)),
                    deadline_ns: deadline.as_ns(),
                    recovered,
                })
            }
            Err(e) => Err(self.recover_after(e)),
        }
    }

    fn recover_after(&mut self, e: NvmeError) -> NvmeError {
        self.recover();
        e
    }

    /// Abort (NVMe 1.4, 5.1) of `cid` on the I/O queue; true when the command
    /// then completed (aborted or not) within the abort timeout.
    fn abort(&mut self, cid: u16) -> bool {
        let deadline = Deadline::after(&self.clock, self.config.abort_timeout);
        let cmd = Command::new(admin::ABORT).cdw(10, u32::from(IO_QID) | u32::from(cid) << 16);
        let Ok(abort_cid) = self.admin.submit(&mut self.regs, cmd) else {
            return false;
        };
        if !matches!(
            self.wait_for(Which::Admin, abort_cid, deadline),
            Ok(Some(_))
        ) {
            return false;
        }
        // The aborted command completes with Command Abort Requested (or its
        // own status); either way it is no longer outstanding.
        matches!(self.wait_for(Which::Io, cid, deadline), Ok(Some(_)))
    }

    /// Resets the controller and brings the I/O queue back (same namespace
    /// geometry required), within the recovery budget: controller reset first,
    /// FLR when that fails and is offered; fenced when nothing works.
    ///
    /// Returns true when the driver is ready again.
    pub fn recover(&mut self) -> bool {
        self.stats.recoveries += 1;
        let budget = Deadline::after(&self.clock, self.config.recovery_budget);
        let mut kinds = [Some(ResetKind::Controller), None];
        if self.function.supports_flr() {
            kinds[1] = Some(ResetKind::FunctionLevel);
        }
        for kind in kinds.into_iter().flatten() {
            if self.reinitialize(kind, budget).is_ok() {
                return true;
            }
        }
        self.fence_now();
        false
    }

    fn reinitialize(&mut self, kind: ResetKind, budget: Deadline) -> Result<(), NvmeError> {
        self.quiesce(budget)?;
        self.reset(kind, budget)?;
        self.verify(budget)?;
        self.enable(budget)?;
        self.identify_controller(budget)?;
        self.identify_namespace(budget)?;
        self.create_io_queues(budget)
    }
}

/// Checks a transfer against the namespace and the buffer; returns its bytes.
fn check_range(
    ns: &NamespaceInfo,
    lba: u64,
    blocks: u64,
    len: usize,
    offset: usize,
) -> Result<u64, NvmeError> {
    let out_of_range = NvmeError::LbaOutOfRange {
        lba,
        blocks,
        namespace_blocks: ns.blocks,
    };
    match lba.checked_add(blocks) {
        Some(end) if blocks > 0 && end <= ns.blocks => {}
        _ => return Err(out_of_range),
    }
    let bytes = blocks.checked_mul(u64::from(ns.block_size));
    let fits = bytes
        .and_then(|b| b.checked_add(offset as u64))
        .is_some_and(|end| end <= len as u64);
    match bytes {
        Some(b) if fits && offset % 4 == 0 => Ok(b),
        _ => Err(NvmeError::BadBuffer {
            offset,
            needed: bytes.unwrap_or(u64::MAX),
            len,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum T {}
    impl Window for T {
        const NAME: &'static str = "t";
        const BASE: u64 = 0x1000;
        const SIZE: u64 = 0x100_0000;
    }

    fn iova(a: u64) -> Iova<T> {
        Iova::new(a).unwrap()
    }

    fn raw(p: Prps<T>) -> (u64, u64, usize, u64) {
        let (first, n) = p.list.map_or((0, 0), |(f, n)| (f.get(), n));
        (p.prp1.get(), p.prp2.map_or(0, |x| x.get()), n, first)
    }

    #[test]
    fn prps_cover_one_two_and_many_pages() {
        let l = iova(0x9000);
        assert_eq!(
            raw(prps_for(iova(0x1000), 512, l).unwrap()),
            (0x1000, 0, 0, 0)
        );
        assert_eq!(
            raw(prps_for(iova(0x1e00), 1024, l).unwrap()),
            (0x1e00, 0x2000, 0, 0)
        );
        assert_eq!(
            raw(prps_for(iova(0x1000), 8192, l).unwrap()),
            (0x1000, 0x2000, 0, 0)
        );
        assert_eq!(
            raw(prps_for(iova(0x1000), 3 * 4096, l).unwrap()),
            (0x1000, 0x9000, 2, 0x2000)
        );
        assert_eq!(
            raw(prps_for(iova(0x1200), 3 * 4096, l).unwrap()),
            (0x1200, 0x9000, 3, 0x2000)
        );
        // 2 MiB starting inside a page: 512 list entries, one list page.
        let p = prps_for(iova(0x1200), 2 << 20, l).unwrap();
        assert_eq!(p.list.map(|(_, n)| n), Some(512));
    }

    #[test]
    fn prps_never_leave_the_window() {
        let l = iova(0x9000);
        let end = T::BASE + T::SIZE;
        assert!(prps_for(iova(end - 4096), 4096, l).is_some());
        assert!(prps_for(iova(end - 4096), 4097, l).is_none());
        assert!(prps_for(iova(end - 512), 8192, l).is_none());
        assert!(prps_for(iova(0x1000), 0, l).is_none());
    }

    #[test]
    fn range_checks_refuse_outside_namespace_and_buffer() {
        let ns = NamespaceInfo {
            nsid: 1,
            blocks: 100,
            block_size: crate::identify::BlockSize::B512,
            max_transfer_blocks: 8,
            format: 0,
        };
        assert_eq!(check_range(&ns, 0, 8, 4096, 0), Ok(4096));
        assert!(matches!(
            check_range(&ns, 99, 2, 4096, 0),
            Err(NvmeError::LbaOutOfRange { .. })
        ));
        assert!(matches!(
            check_range(&ns, u64::MAX, 2, 4096, 0),
            Err(NvmeError::LbaOutOfRange { .. })
        ));
        assert!(matches!(
            check_range(&ns, 0, 0, 4096, 0),
            Err(NvmeError::LbaOutOfRange { .. })
        ));
        assert!(matches!(
            check_range(&ns, 0, 8, 4096, 4),
            Err(NvmeError::BadBuffer { .. })
        ));
        assert!(matches!(
            check_range(&ns, 0, 1, 4096, 2),
            Err(NvmeError::BadBuffer { .. })
        ));
    }
}
