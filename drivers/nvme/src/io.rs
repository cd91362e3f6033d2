//! Block I/O on the one I/O queue pair: Read, Write and Flush with PRPs from the
//! window (NVMe 1.4, 4.3 and 6), a bounded per-command timeout, and
//! abort-and-reset recovery.
//!
//! The recovery kernel writes its crash dump with [`Nvme::write_blocks`] from a
//! buffer of the window, reads it back with [`Nvme::read_blocks`] and ends with
//! [`Nvme::flush`]. Blocks outside the namespace are refused before anything is
//! submitted.

use core::time::Duration;

use paranoid::dma::{CpuWrites, DeviceWrites, Direction, DmaBuffer, Window};
use paranoid::lifecycle::{Lifecycle, ResetKind};
use paranoid::mmio::RegisterIo;
use paranoid::pci::ConfigAccess;
use paranoid::time::{Clock, Deadline};

use crate::command::{admin, nvm, Command};
use crate::controller::{Nvme, State, Which, IO_QID};
use crate::error::NvmeError;
use crate::identify::NamespaceInfo;
use crate::queue::NVME_PAGE;

/// PRP entries for one transfer (NVMe 1.4, 4.3): PRP1 may be page-offset; PRP2
/// is the second page, or the address of a list of the remaining pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prps {
    pub prp1: u64,
    pub prp2: u64,
    /// Entries to write into the PRP list page (0: no list).
    pub list_entries: usize,
    /// First page address the list covers.
    pub list_first: u64,
}

/// Computes the PRPs for `len` bytes at IOVA `addr` (`len` ≥ 1, at most 512
/// list entries: the caller caps transfers at [`crate::identify::DRIVER_MAX_TRANSFER`]).
pub(crate) fn prps_for(addr: u64, len: u64, list_iova: u64) -> Prps {
    let page = NVME_PAGE as u64;
    let first = page - (addr % page);
    if len <= first {
        return Prps {
            prp1: addr,
            prp2: 0,
            list_entries: 0,
            list_first: 0,
        };
    }
    let second = addr - (addr % page) + page;
    let rest = len - first;
    if rest <= page {
        return Prps {
            prp1: addr,
            prp2: second,
            list_entries: 0,
            list_first: 0,
        };
    }
    Prps {
        prp1: addr,
        prp2: list_iova,
        list_entries: rest.div_ceil(page) as usize,
        list_first: second,
    }
}

impl<R, P, C, W> Nvme<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    /// Writes `blocks` blocks at `lba` from `buf`, starting `offset` bytes in.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NotReady`], [`NvmeError::LbaOutOfRange`] (nothing is sent),
    /// [`NvmeError::BadBuffer`], or a command error: on a timeout or a bad
    /// completion the controller is reset and re-initialized (see
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

    /// Reads `blocks` blocks at `lba` into `buf`, starting `offset` bytes in.
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
        #[cfg(paranoid_mutant = "nvme_reads_fail")]
        return Err(NvmeError::NotReady);
        self.transfer::<D, true>(nvm::READ, lba, blocks, buf, offset)
    }

    /// Submits a write of `blocks` blocks at `lba` from `buf` and returns at once
    /// with its command id, without waiting for the completion: for pipelining
    /// writes, and for a kernel that wants I/O in flight. Completions are
    /// consumed with [`reap`](Self::reap); reap everything before the next
    /// synchronous command.
    ///
    /// The transfer must fit two memory pages (PRP1 and PRP2, no PRP list): the
    /// controller may read the data after this returns, and one shared PRP-list
    /// page could not serve several commands in flight.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NotReady`], [`NvmeError::LbaOutOfRange`],
    /// [`NvmeError::BadBuffer`] (also when the transfer needs a PRP list),
    /// [`NvmeError::QueueFull`].
    pub fn submit_write<D: CpuWrites>(
        &mut self,
        lba: u64,
        blocks: u64,
        buf: &DmaBuffer<W, D>,
        offset: usize,
    ) -> Result<u16, NvmeError> {
        let ns = self.ready_namespace()?;
        check_range(&ns, lba, blocks, buf.len(), offset)?;
        let addr = buf.iova().get() + offset as u64;
        let bytes = blocks * u64::from(ns.block_size);
        let prps = prps_for(addr, bytes, self.prp_list.iova().get());
        if prps.list_entries > 0 || blocks > u64::from(ns.max_transfer_blocks) {
            return Err(NvmeError::BadBuffer {
                offset,
                needed: bytes,
                len: buf.len(),
            });
        }
        let cmd = Command::new(nvm::WRITE)
            .nsid(ns.nsid)
            .prp(prps.prp1, prps.prp2)
            .cdw(10, lba as u32)
            .cdw(11, (lba >> 32) as u32)
            .cdw(12, (blocks - 1) as u32);
        self.io.submit(&mut self.regs, cmd)
    }

    /// Consumes the completions the controller has posted on the I/O queue
    /// (validated like every completion); returns how many. Bounded: at most one
    /// pass over the queue.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NotReady`], or [`NvmeError::BadCompletion`] for an entry
    /// that fails validation (it is left unconsumed).
    pub fn reap(&mut self) -> Result<u16, NvmeError> {
        self.ready_namespace()?;
        let mut reaped = 0u16;
        for _ in 0..self.io.depth() {
            match self.io.poll_once(&mut self.regs)? {
                Some(_) => reaped += 1,
                None => break,
            }
        }
        self.stats.commands += u64::from(reaped);
        Ok(reaped)
    }

    /// Commands submitted on the I/O queue and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.io.outstanding()
    }

    /// Flushes the volatile write cache of the namespace.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NotReady`] or a command error (with recovery as for writes).
    pub fn flush(&mut self) -> Result<(), NvmeError> {
        let ns = self.ready_namespace()?;
        self.io_command::<true>(Command::new(nvm::FLUSH).nsid(ns.nsid))
    }

    fn ready_namespace(&self) -> Result<NamespaceInfo, NvmeError> {
        match (self.state, self.namespace) {
            (State::Ready, Some(ns)) => Ok(ns),
            _ => Err(NvmeError::NotReady),
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
        if CHECKED && cfg!(not(paranoid_mutant = "nvme_skip_range_check")) {
            check_range(&ns, lba, blocks, buf.len(), offset)?;
        }
        let base = buf.iova().get() + offset as u64;
        let per_command = u64::from(ns.max_transfer_blocks);
        let block = u64::from(ns.block_size);
        let mut done = 0u64;
        // At most blocks / per_command + 1 iterations: `done` grows each time.
        while done < blocks {
            let n = (blocks - done).min(per_command);
            let addr = base + done * block;
            let prps = prps_for(addr, n * block, self.prp_list.iova().get());
            self.write_prp_list(&prps)?;
            let slba = lba + done;
            let cmd = Command::new(opcode)
                .nsid(ns.nsid)
                .prp(prps.prp1, prps.prp2)
                .cdw(10, slba as u32)
                .cdw(11, (slba >> 32) as u32)
                .cdw(12, (n - 1) as u32);
            self.io_command::<CHECKED>(cmd)?;
            done += n;
        }
        Ok(())
    }

    fn write_prp_list(&mut self, prps: &Prps) -> Result<(), NvmeError> {
        let page = NVME_PAGE as u64;
        for i in 0..prps.list_entries {
            self.prp_list
                .write::<u64>(i * 8, prps.list_first + i as u64 * page)?;
        }
        Ok(())
    }

    /// Submits one I/O command and waits for it; on a timeout aborts it, and
    /// when the abort does not take, or a completion was bad, resets and
    /// re-initializes the controller.
    fn io_command<const CHECKED: bool>(&mut self, cmd: Command) -> Result<(), NvmeError> {
        let start = self.clock.now_ns();
        let deadline = Deadline::after(&self.clock, self.config.io_timeout);
        let cid = match self.io.submit(&mut self.regs, cmd) {
            Ok(cid) => cid,
            Err(e) => return Err(self.recover_after(e)),
        };
        match self.wait_for_with::<CHECKED>(Which::Io, cid, deadline) {
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
        if self.flr {
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

    #[test]
    fn prps_cover_one_two_and_many_pages() {
        let p = prps_for(0x1000, 512, 0x9000);
        assert_eq!((p.prp1, p.prp2, p.list_entries), (0x1000, 0, 0));
        let p = prps_for(0x1e00, 1024, 0x9000);
        assert_eq!((p.prp1, p.prp2, p.list_entries), (0x1e00, 0x2000, 0));
        let p = prps_for(0x1000, 8192, 0x9000);
        assert_eq!((p.prp1, p.prp2, p.list_entries), (0x1000, 0x2000, 0));
        let p = prps_for(0x1000, 3 * 4096, 0x9000);
        assert_eq!((p.prp2, p.list_entries, p.list_first), (0x9000, 2, 0x2000));
        let p = prps_for(0x1200, 3 * 4096, 0x9000);
        assert_eq!((p.prp2, p.list_entries, p.list_first), (0x9000, 3, 0x2000));
    }

    #[test]
    fn range_checks_refuse_outside_namespace_and_buffer() {
        let ns = NamespaceInfo {
            nsid: 1,
            blocks: 100,
            block_size: 512,
            max_transfer_blocks: 8,
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
