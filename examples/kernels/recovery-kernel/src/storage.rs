//! The dump's block sink: the paranoid NVMe driver, through a DMA buffer in the
//! recovery window.

use paranoid::dma::{DmaBuffer, ToDevice, Window};
use paranoid::mmio::RegisterIo;
use paranoid::pci::ConfigAccess;
use paranoid::time::Clock;
use paranoid_nvme::{Nvme, NvmeError};
use paranoid_recovery::dump::BlockSink;

/// Writes dump blocks through `nvme`, staging them in `buffer`.
pub struct NvmeSink<'a, R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> {
    /// The ready controller.
    pub nvme: &'a mut Nvme<R, P, C, W>,
    /// A staging buffer in the recovery window.
    pub buffer: DmaBuffer<W, ToDevice>,
    /// The namespace block size.
    pub block_size: u32,
}

impl<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> BlockSink for NvmeSink<'_, R, P, C, W> {
    type Error = NvmeError;

    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn max_transfer(&self) -> usize {
        self.buffer.len()
    }

    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), NvmeError> {
        self.buffer.write_bytes(0, data)?;
        let blocks = data.len() as u64 / u64::from(self.block_size);
        self.nvme.write_blocks(lba, blocks, &self.buffer, 0)
    }

    fn flush(&mut self) -> Result<(), NvmeError> {
        self.nvme.flush()
    }
}
