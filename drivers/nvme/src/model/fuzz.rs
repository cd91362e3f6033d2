//! Fuzz entry points for malicious controller replies, shared by the in-suite
//! proptest runs (`tests/fuzz.rs`) and the cargo-fuzz targets (`fuzz/`).
//!
//! - [`completion_queue`]: raw bytes become completion queue entries under a
//!   queue pair with commands outstanding; whatever they hold, the queue hands
//!   out only completions of outstanding commands, each once, and rejects the
//!   rest with a typed error.
//! - [`identify`]: raw bytes become Identify Controller and Namespace data;
//!   whatever they hold, an accepted namespace has a sane geometry.
//! - [`driver`]: raw bytes become completion entries the model posts in place
//!   of real ones during init and I/O; the whole driver is held to the
//!   campaign's oracle.

use std::ptr::NonNull;

use paranoid::dma::{DmaArena, DmaBuffer, FromDevice, Window, WindowMapping};
use paranoid::sim::{RegisterFile, SimClock, SimIommu, SimMemory, SimMmio};
use paranoid::time::Deadline;

use super::oracle::{check_case, Outcome};
use super::{Bench, CompletionFault, SimWindow};
use crate::command::{nvm, Command, CQE_SIZE};
use crate::error::NvmeError;
use crate::identify::{parse_controller, parse_namespace, DRIVER_MAX_TRANSFER};
use crate::queue::{QueuePair, MAX_OUTSTANDING};
use crate::regs::Registers;

const PHYS: u64 = 0x0010_0000;
const LEN: usize = 64 << 10;

/// An arena over all of `memory`, mapped at the window's base by `iommu`
/// (which the caller keeps alive beside the arena).
fn arena(memory: &SimMemory, iommu: &mut SimIommu) -> Result<DmaArena<SimWindow, 8>, String> {
    let clock = SimClock::new();
    let deadline = Deadline::after(&clock, core::time::Duration::from_secs(1));
    let mapping = WindowMapping::<SimWindow>::map(iommu, PHYS, LEN as u64, deadline)
        .map_err(|e| e.to_string())?;
    let host = memory.host_ptr(PHYS, LEN).unwrap_or(NonNull::dangling());
    // SAFETY:
    // - `host..host + LEN` is the CPU's view of all of `memory` (simulated
    //   physical `PHYS..`), page-aligned, alive as long as the caller's
    //   `memory`, which outlives the arena in each entry point;
    // - only the arena's buffers and `SimMemory` copies touch it.
    Ok(unsafe { DmaArena::from_raw(host, mapping) })
}

/// A page of `arena` holding `bytes` (the first 4096 of them, zero-padded):
/// what the controller would have written into an Identify buffer.
fn page(
    arena: &mut DmaArena<SimWindow, 8>,
    memory: &SimMemory,
    bytes: &[u8],
) -> Result<DmaBuffer<SimWindow, FromDevice>, String> {
    let buf = arena
        .alloc::<FromDevice>(4096, 4096)
        .map_err(|e| e.to_string())?;
    let phys = PHYS + (buf.iova().get() - SimWindow::BASE);
    memory.write(phys, bytes.get(..bytes.len().min(4096)).unwrap_or(&[]));
    Ok(buf)
}

/// Completion entries from `data` under a queue pair with commands outstanding.
///
/// # Errors
///
/// A description of the broken invariant (a completion handed out twice or for
/// a command never submitted, an untyped error).
pub fn completion_queue(data: &[u8]) -> Result<(), String> {
    let (Some(&a), Some(&b)) = (data.first(), data.get(1)) else {
        return Ok(());
    };
    let memory = SimMemory::new(PHYS, LEN);
    let mut iommu = SimIommu::new();
    let mut arena = arena(&memory, &mut iommu)?;
    let mut regs = Registers::new(SimMmio::new(RegisterFile::new(0x2000), SimClock::new()));
    let capacity = 2 + u16::from(a % 15);
    let mut q = QueuePair::new(&mut arena, 1, capacity).map_err(|e| e.to_string())?;
    q.restart(capacity).map_err(|e| e.to_string())?;
    let submit = (1 + usize::from(b) % MAX_OUTSTANDING).min(usize::from(capacity) - 1);
    let mut outstanding = Vec::new();
    for i in 0..submit {
        let cid = q
            .submit(&mut regs, Command::new(nvm::READ).cdw(10, i as u32))
            .map_err(|e| format!("submit: {e}"))?;
        outstanding.push(cid);
    }
    let cq_phys = PHYS + (q.cq_iova().get() - SimWindow::BASE);
    for (i, entry) in data.get(2..).unwrap_or(&[]).chunks(CQE_SIZE).enumerate() {
        let slot = i % usize::from(capacity);
        memory.write(cq_phys + (slot * CQE_SIZE) as u64, entry);
        match q.poll_once(&mut regs) {
            Ok(None) => {}
            Ok(Some(c)) => {
                let Some(at) = outstanding.iter().position(|&o| o == c.cid) else {
                    return Err(format!("completion for cid {} not outstanding", c.cid));
                };
                outstanding.swap_remove(at);
            }
            Err(NvmeError::BadCompletion { .. }) => {}
            Err(e) => return Err(format!("untyped rejection: {e}")),
        }
        if q.outstanding() != outstanding.len() {
            return Err(format!(
                "queue says {} outstanding, {} really are",
                q.outstanding(),
                outstanding.len()
            ));
        }
    }
    Ok(())
}

/// The Active Namespace ID list (CNS 02h) in `data` (zero-padded to a page)
/// as the driver parses it for a controller with `nn` namespaces.
///
/// # Errors
///
/// The driver's rejection, or a description of a list it accepted that is
/// not strictly ascending within `1..=nn`.
pub fn active_namespace_list(data: &[u8], nn: u32) -> Result<Vec<u32>, String> {
    let memory = SimMemory::new(PHYS, LEN);
    let mut iommu = SimIommu::new();
    let mut arena = arena(&memory, &mut iommu)?;
    let mut buf = page(&mut arena, &memory, data)?;
    let ids = crate::identify::parse_active_namespaces(&mut buf, nn)
        .map_err(|e| e.to_string())?
        .ids()
        .to_vec();
    if ids.windows(2).any(|w| w[0] >= w[1]) || ids.iter().any(|&id| id == 0 || id > nn) {
        return Err(format!("accepted {ids:?} with NN {nn}"));
    }
    Ok(ids)
}

/// Identify Namespace data in `data` (zero-padded to a page) as the driver
/// parses it for namespace 1 of a controller moving at most `max_transfer`
/// bytes per command.
///
/// # Errors
///
/// The driver's rejection, or a description of a buffer it could not get.
pub fn namespace_page(
    data: &[u8],
    max_transfer: u32,
) -> Result<crate::identify::NamespaceInfo, String> {
    let memory = SimMemory::new(PHYS, LEN);
    let mut iommu = SimIommu::new();
    let mut arena = arena(&memory, &mut iommu)?;
    let mut buf = page(&mut arena, &memory, data)?;
    parse_namespace(&mut buf, 1, max_transfer).map_err(|e| e.to_string())
}

/// Identify data from `data` (the first 4096 bytes controller, the next
/// namespace; short inputs are zero-padded).
///
/// # Errors
///
/// A description of an accepted geometry that is not sane.
pub fn identify(data: &[u8]) -> Result<(), String> {
    let memory = SimMemory::new(PHYS, LEN);
    let mut iommu = SimIommu::new();
    let mut arena = arena(&memory, &mut iommu)?;
    let mut ctrl = page(&mut arena, &memory, data)?;
    let mut ns = page(&mut arena, &memory, data.get(4096..).unwrap_or(&[]))?;
    let max = match parse_controller(&mut ctrl, 1) {
        Ok(c) => {
            if c.max_transfer < 4096 || c.max_transfer > DRIVER_MAX_TRANSFER {
                return Err(format!("max transfer {}", c.max_transfer));
            }
            c.max_transfer
        }
        Err(NvmeError::BadIdentify { .. } | NvmeError::NamespaceAbsent { .. }) => {
            DRIVER_MAX_TRANSFER
        }
        Err(e) => return Err(format!("untyped rejection: {e}")),
    };
    match parse_namespace(&mut ns, 1, max) {
        Ok(n) => {
            let sane = (512..=4096).contains(&n.block_size.bytes())
                && n.block_size.bytes().is_power_of_two()
                && n.blocks > 0
                && n.blocks.checked_mul(u64::from(n.block_size)).is_some()
                && n.max_transfer_blocks >= 1
                && u64::from(n.max_transfer_blocks) * u64::from(n.block_size) <= u64::from(max);
            if sane {
                Ok(())
            } else {
                Err(format!("accepted nonsense geometry {n:?}"))
            }
        }
        Err(
            NvmeError::BadIdentify { .. }
            | NvmeError::Unsupported { .. }
            | NvmeError::UnsupportedFormat { .. }
            | NvmeError::NamespaceInactive { .. },
        ) => Ok(()),
        Err(e) => Err(format!("untyped rejection: {e}")),
    }
}

/// Raw completions from `data` posted by the model in place of real ones
/// (18 bytes each: completion index, flags, 16 bytes of entry), then init and a
/// data check held to the oracle.
///
/// # Errors
///
/// Why the oracle failed.
pub fn driver(data: &[u8]) -> Result<Outcome, String> {
    let faults: Vec<(u64, CompletionFault)> = data
        .chunks_exact(18)
        .take(4)
        .map(|c| {
            let mut dw = [0u32; 4];
            for (d, b) in dw.iter_mut().zip(c[2..].chunks_exact(4)) {
                *d = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            let keep_phase = c[1] & 1 == 0;
            (
                u64::from(c[0] % 16),
                CompletionFault::Raw { dw, keep_phase },
            )
        })
        .collect();
    let b = Bench::qemu_like();
    b.model.borrow_mut().faults.completions = faults;
    check_case(b, data.len() as u64)
}
