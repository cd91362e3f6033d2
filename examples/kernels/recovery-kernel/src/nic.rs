//! The NIC: brought up from whatever the crashed kernel left (receiving into
//! its old ring, a transmit burst posted), then used for UDP heartbeats to the
//! cluster.

use core::fmt::Write as _;

use paranoid::dma::{DmaArena, Window};
use paranoid::mmio::{Mmio, RegisterIo};
use paranoid::pci::Cf8;
use paranoid::time::Clock;
use paranoid_boot::{platform, println, TscClock};
use paranoid_e1000::E1000;
use paranoid_recovery::heartbeat::Heartbeat;

use crate::{fail, iommu, Failed, Line, Recovery};

/// The NIC driver as the recovery kernel instantiates it.
pub type Nic<W> = E1000<Mmio, Cf8, TscClock, W>;

/// UDP port heartbeats are sent to.
pub const HEARTBEAT_PORT: u16 = 7374;
/// Payload prefix of a heartbeat.
pub const HEARTBEAT_MAGIC: &[u8] = b"PARANOID-HEARTBEAT";

/// Finds the first e1000, gives it the recovery domain and brings it up.
/// A NIC that cannot be brought up is reported and fenced, not fatal: the dump
/// goes to storage.
pub fn bring_up<W: Window>(
    r: &mut Recovery<'_>,
    arena: &mut DmaArena<W>,
    unit: Option<&mut iommu::Unit>,
) -> Result<Option<Nic<W>>, Failed> {
    let t = r.clock.now_ns();
    let mut cf8 = platform::cf8();
    let Ok(f) = platform::find(&mut cf8, platform::E1000) else {
        return Ok(None);
    };
    let (mut regs, _) =
        platform::map_bar0(&mut cf8, f.address).map_err(|e| fail("e1000 bar", e))?;
    let found = describe(&mut regs);
    if let Some(unit) = unit {
        iommu::attach(unit, f.address.source_id())?;
    }
    let nic = E1000::new(
        regs,
        cf8,
        f.address,
        r.clock,
        arena,
        paranoid_e1000::Config::default(),
    )
    .map_err(|e| fail("e1000", e))?;
    match paranoid_e1000::init::init(nic, &r.clock) {
        Ok(ready) => {
            println!("{}", ready.trace);
            let nic = ready.device.into_inner();
            let m = nic.mac().0;
            r.report.device(
                format_args!("e1000 {}", f.address),
                format_args!("{}", found.as_str()),
                format_args!(
                    "ready in {:?}, {} escalation(s), mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    ready.trace.total(),
                    ready.trace.escalations(),
                    m[0], m[1], m[2], m[3], m[4], m[5]
                ),
            );
            r.report
                .step("e1000 init", t, r.clock.now_ns(), format_args!("ready"));
            Ok(Some(nic))
        }
        Err(failure) => {
            println!("{}", failure.trace);
            r.report.device(
                format_args!("e1000 {}", f.address),
                format_args!("{}", found.as_str()),
                format_args!("fenced: {}", failure.cause),
            );
            r.report.step(
                "e1000 init",
                t,
                r.clock.now_ns(),
                format_args!("fenced, continuing without network"),
            );
            Ok(None)
        }
    }
}

/// The NIC's state as found.
fn describe(regs: &mut impl RegisterIo) -> Line {
    let status = regs.read32(0x08);
    let mut line = Line::new();
    if status.is_all_ones() {
        let _ = write!(line, "gone (STATUS reads all-ones)");
        return line;
    }
    let rctl = regs.read32(0x100);
    let tctl = regs.read32(0x400);
    let (rdh, rdt) = (regs.read32(0x2810), regs.read32(0x2818));
    let (tdh, tdt) = (regs.read32(0x3810), regs.read32(0x3818));
    let _ = write!(
        line,
        "RCTL.EN={} RDH={} RDT={} TCTL.EN={} TDH={} TDT={}{}",
        u8::from(rctl.bit(1)),
        rdh.clamp_max(0xffff),
        rdt.clamp_max(0xffff),
        u8::from(tctl.bit(1)),
        tdh.clamp_max(0xffff),
        tdt.clamp_max(0xffff),
        if rctl.bit(1) {
            " (RX into the old ring)"
        } else {
            ""
        }
    );
    line
}

/// A heartbeat frame to the cluster: IPv4/UDP broadcast to [`HEARTBEAT_PORT`].
pub struct UdpBeat<'n, W: Window> {
    nic: &'n mut Nic<W>,
    seq: u32,
}

impl<'n, W: Window> UdpBeat<'n, W> {
    /// Heartbeats through `nic`.
    pub fn new(nic: &'n mut Nic<W>) -> Self {
        Self { nic, seq: 0 }
    }
}

/// The ones'-complement checksum of an IPv4 header.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in header.chunks(2) {
        let hi = pair.first().copied().unwrap_or(0);
        let lo = pair.get(1).copied().unwrap_or(0);
        sum += u32::from(u16::from_be_bytes([hi, lo]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds a heartbeat frame into `out`; returns its length.
fn heartbeat_frame(out: &mut [u8; 128], mac: [u8; 6], seq: u32) -> usize {
    let payload_len = HEARTBEAT_MAGIC.len() + 4;
    let udp_len = 8 + payload_len;
    let ip_len = 20 + udp_len;
    out.fill(0);
    out[..6].copy_from_slice(&[0xff; 6]);
    out[6..12].copy_from_slice(&mac);
    out[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut out[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&[192, 0, 2, 1]); // TEST-NET-1: no address configured
    ip[16..20].copy_from_slice(&[255, 255, 255, 255]);
    let sum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut out[34..42];
    udp[0..2].copy_from_slice(&(HEARTBEAT_PORT - 1).to_be_bytes());
    udp[2..4].copy_from_slice(&HEARTBEAT_PORT.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    out[42..42 + HEARTBEAT_MAGIC.len()].copy_from_slice(HEARTBEAT_MAGIC);
    out[42 + HEARTBEAT_MAGIC.len()..42 + payload_len].copy_from_slice(&seq.to_be_bytes());
    (14 + ip_len).max(60)
}

impl<W: Window> Heartbeat for UdpBeat<'_, W> {
    fn name(&self) -> &'static str {
        "udp heartbeat"
    }

    fn beat(&mut self) -> Result<(), &'static str> {
        let mut frame = [0u8; 128];
        let len = heartbeat_frame(&mut frame, self.nic.mac().0, self.seq);
        self.seq = self.seq.wrapping_add(1);
        let bytes = frame.get(..len).ok_or("frame")?;
        self.nic.transmit(bytes).map_err(|_| "transmit")
    }
}
