//! What a model NIC does (reset timing, link, EEPROM, malice) and what it
//! records (driver violations, its own lies, DMA refused by the IOMMU).

use paranoid::sim::DmaFault;

/// How CTRL.RST behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetBehaviour {
    /// As the SDM: RST reads set for `delay_ns`, then every register returns to
    /// its default and RAL0/RAH0 are reloaded from the EEPROM (the MTA, which
    /// has no defined reset value, keeps its contents).
    Spec {
        /// How long the reset takes.
        delay_ns: u64,
    },
    /// As QEMU's e1000: RST self-clears at once and nothing else changes.
    Qemu,
    /// RST never clears: a wedged controller.
    Stuck,
}

/// The carrier on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkBehaviour {
    /// Always there.
    Up,
    /// Never there (no cable).
    Down,
    /// Comes at this time (ns).
    UpAt(u64),
    /// Up and down every `period_ns` until `until_ns`, then up.
    Flapping {
        /// Half a period of the flapping.
        period_ns: u64,
        /// When it settles up.
        until_ns: u64,
    },
}

/// How EERD answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EerdBehaviour {
    /// DONE after the delay, with the word asked for.
    Normal,
    /// DONE never sets.
    Stuck,
    /// DONE with the data and address of the next word (a lying device).
    WrongAddress,
}

/// The lies of a malicious device, each a per-cent chance per occasion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Malice {
    /// Seed of the model's own generator (deterministic per state).
    pub seed: u64,
    /// Receive write-back length past the buffer.
    pub rx_length_past_buffer: u8,
    /// Receive write-back with a reserved status bit.
    pub rx_reserved_status: u8,
    /// Receive write-back without EOP.
    pub rx_clear_eop: u8,
    /// A DD written into the receive descriptor at RDT, which the device does not own.
    pub rx_dd_unowned: u8,
    /// Transmit write-back with reserved status bits.
    pub tx_reserved_status: u8,
    /// RDH/TDH read outside the ring while the unit is enabled.
    pub head_out_of_range: u8,
}

impl Malice {
    /// True when no lie is ever told.
    pub fn is_honest(&self) -> bool {
        self.rx_length_past_buffer == 0
            && self.rx_reserved_status == 0
            && self.rx_clear_eop == 0
            && self.rx_dd_unowned == 0
            && self.tx_reserved_status == 0
            && self.head_out_of_range == 0
    }
}

/// Everything that shapes a model's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// CTRL.RST.
    pub reset: ResetBehaviour,
    /// The carrier.
    pub link: LinkBehaviour,
    /// Auto-negotiation time after reset or after SLU is set.
    pub autoneg_ns: u64,
    /// Link needs CTRL.SLU (the SDM's internal PHY); QEMU ignores SLU.
    pub slu_required: bool,
    /// EECD.PRES.
    pub eeprom_present: bool,
    /// EERD.
    pub eerd: EerdBehaviour,
    /// Time an EERD read takes.
    pub eerd_delay_ns: u64,
    /// Time the transmit unit takes per descriptor (0: all at once).
    pub tx_desc_ns: u64,
    /// Time the receive unit takes per frame (0: all at once).
    pub rx_frame_ns: u64,
    /// Lies.
    pub malice: Malice,
    /// RDBAL and TDBAL ignore writes and keep what they held (a wedged
    /// register file): the rings would be wherever the old values point.
    pub ring_base_stuck: bool,
}

impl Behaviour {
    /// A well-behaved NIC as the SDM describes it: 1 µs reset, link up 1 ms
    /// after SLU, 2 µs EERD reads, 1 µs per descriptor and per frame.
    pub const fn spec() -> Self {
        Self {
            reset: ResetBehaviour::Spec { delay_ns: 1_000 },
            link: LinkBehaviour::Up,
            autoneg_ns: 1_000_000,
            slu_required: true,
            eeprom_present: true,
            eerd: EerdBehaviour::Normal,
            eerd_delay_ns: 2_000,
            tx_desc_ns: 1_000,
            rx_frame_ns: 1_000,
            malice: Malice {
                seed: 0,
                rx_length_past_buffer: 0,
                rx_reserved_status: 0,
                rx_clear_eop: 0,
                rx_dd_unowned: 0,
                tx_reserved_status: 0,
                head_out_of_range: 0,
            },
            ring_base_stuck: false,
        }
    }

    /// QEMU's e1000: RST changes nothing, link up at once, no SLU needed,
    /// EERD and DMA immediate.
    pub const fn qemu() -> Self {
        Self {
            reset: ResetBehaviour::Qemu,
            autoneg_ns: 0,
            slu_required: false,
            eerd_delay_ns: 0,
            tx_desc_ns: 0,
            rx_frame_ns: 0,
            ..Self::spec()
        }
    }
}

impl Default for Behaviour {
    fn default() -> Self {
        Self::spec()
    }
}

/// Something the driver did that a correct driver never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A tail doorbell written with an index outside the ring.
    DoorbellOutOfRange {
        /// `"RDT"` or `"TDT"`.
        register: &'static str,
        /// The value written.
        value: u32,
        /// Descriptors in the ring.
        ring_len: u32,
    },
    /// A transmit descriptor with a length of 0 or past the largest buffer.
    TxLength {
        /// The ring slot.
        slot: u32,
        /// The length.
        len: u32,
    },
    /// A receive descriptor handed over with a null buffer address while the
    /// ring lies in the recovery window.
    RxNullBuffer {
        /// The ring slot.
        slot: u32,
    },
    /// Bus mastering was turned back on with no reset (CTRL.RST or FLR)
    /// completed since it was turned off: the device may still hold the dead
    /// kernel's ring state when it can reach memory again.
    BusMasterBeforeReset {
        /// When the model saw it (ns).
        at_ns: u64,
    },
    /// A frame handed over without CMD.IFCS: the MAC sends it without a
    /// frame check sequence, and every receiver drops it.
    TxWithoutFcs {
        /// The ring slot.
        slot: u32,
    },
    /// EECD.FWE (flash write enable, bits 5:4) changed to 00 or 11, the two
    /// values the 8254x SDM marks "not allowed" in its EECD description.
    FlashWriteEnableInvalid {
        /// The EECD value written.
        value: u32,
    },
}

/// One lie a malicious model told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// A receive write-back length larger than the buffer.
    RxLengthPastBuffer {
        /// The slot.
        slot: u32,
        /// The length written.
        length: u16,
    },
    /// A receive write-back with reserved status bits.
    RxReservedStatus {
        /// The slot.
        slot: u32,
    },
    /// A receive write-back without EOP.
    RxNoEop {
        /// The slot.
        slot: u32,
    },
    /// DD written into a receive descriptor the device did not own.
    RxDdUnowned {
        /// The slot.
        slot: u32,
    },
    /// A transmit write-back with reserved status bits.
    TxReservedStatus {
        /// The slot.
        slot: u32,
    },
    /// A head register read outside its ring.
    HeadOutOfRange {
        /// `"RDH"` or `"TDH"`.
        register: &'static str,
        /// The value returned.
        value: u32,
    },
}

/// A DMA the IOMMU refused (or that left memory), with when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escape {
    /// Simulated time of the access.
    pub at_ns: u64,
    /// The refused access.
    pub fault: DmaFault,
}

/// What a model saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// Driver mistakes.
    pub violations: Vec<Violation>,
    /// The model's lies.
    pub lies: Vec<Lie>,
    /// Refused DMA.
    pub escapes: Vec<Escape>,
    /// Frames delivered into the receive ring.
    pub rx_frames: u64,
    /// Frames sent on the wire.
    pub tx_frames: u64,
    /// Frames lost for want of a receive descriptor.
    pub rx_overruns: u64,
    /// Clock readings (ns) at which the model saw bus mastering go from off
    /// to on, as its configuration space showed it at its next access: the
    /// device's own record of when DMA was allowed again, for oracles that
    /// must not trust the driver's trace.
    pub bus_master_on_ns: Vec<u64>,
}
