//! The NIC: brought up from whatever the crashed kernel left (receiving into
//! its old ring, a transmit burst posted), then used for UDP heartbeats to the
//! cluster and, with `stream=on`, to stream the dump.

use core::cell::RefCell;

use paranoid::dma::{DmaArena, Window};
use paranoid::mmio::Mmio;
use paranoid::pci::Cf8;
use paranoid::time::{Clock, Deadline};
use paranoid_boot::{platform, println};
use paranoid_dump::stream::{encode_data, encode_end, DATA_HEADER, DATA_PER_RECORD, STREAM_PORT};
use paranoid_dump::{ChunkHeader, Range};
use paranoid_e1000::{E1000Error, InheritedState, E1000};
use paranoid_recovery::heartbeat::Heartbeat;
use paranoid_recovery::result::Nic as NicState;

use crate::heartbeat::RecoveryClock;
use crate::{fail, iommu, Failed, Recovery};

/// The NIC driver as the recovery kernel instantiates it.
pub type Nic<W> = E1000<Mmio, Cf8, RecoveryClock, W>;

/// UDP port heartbeats are sent to.
pub const HEARTBEAT_PORT: u16 = 7374;
/// Payload prefix of a heartbeat.
pub const HEARTBEAT_MAGIC: &[u8] = b"PARANOID-HEARTBEAT";

/// PCI class of an Ethernet controller.
const ETHERNET_CLASS: [u8; 2] = [0x02, 0x00];

/// How long reading one NIC's EEPROM may take (64 words; Microwire on the
/// 82544GC is the slow one, about 16 ms).
const IDENTIFY_BUDGET: core::time::Duration = core::time::Duration::from_millis(500);

/// The supported NIC whose EEPROM holds station address `mac` (`nic_mac=`),
/// with its mapped registers: each candidate's EEPROM is read in walk order
/// (no reset, no DMA, [`paranoid_e1000::eeprom::station_address`]); the
/// others are reported and left as the fence left them (blocked at the IOMMU,
/// or bus mastering off).
fn named(
    r: &mut Recovery<'_>,
    cf8: &mut Cf8,
    nics: &platform::Matches,
    mac: [u8; 6],
) -> Result<Option<(paranoid::pci::topology::Node, paranoid_e1000::Part, Mmio)>, Failed> {
    for f in nics.iter() {
        let Ok(part) = paranoid_e1000::Part::from_ids(f.info.vendor, f.info.device) else {
            continue;
        };
        let (mut regs, _) =
            platform::map_bar0(cf8, f.address()).map_err(|e| fail("e1000 bar", e))?;
        let deadline = Deadline::after(&r.clock, IDENTIFY_BUDGET);
        match paranoid_e1000::eeprom::station_address(&mut regs, part, &r.clock, deadline) {
            Ok(found) if found.0 == mac => return Ok(Some((*f, part, regs))),
            Ok(found) => {
                let m = found.0;
                r.report.device(
                    format_args!("nic {}", f.address()),
                    format_args!(
                        "mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                        m[0], m[1], m[2], m[3], m[4], m[5]
                    ),
                    format_args!("not the NIC named by nic_mac=: not driven"),
                );
            }
            Err(e) => r.report.device(
                format_args!("nic {}", f.address()),
                format_args!("EEPROM unreadable"),
                format_args!("{e}: not driven"),
            ),
        }
    }
    Ok(None)
}

/// Finds the NICs on every bus; the one named by `nic_mac=` (when set), else
/// the first 8254x part the driver supports, gets the recovery domain and is
/// brought up. Every other Ethernet function (an
/// 82574L, say) is refused by its ids (the driver's typed error), fenced with
/// bus mastering off, and reported. A NIC that cannot be brought up is
/// reported and fenced, not fatal: the dump goes to storage.
pub fn bring_up<W: Window>(
    r: &mut Recovery<'_>,
    arena: &mut DmaArena<W>,
    unit: Option<&mut iommu::Unit>,
) -> Result<Option<Nic<W>>, Failed> {
    let t = r.clock.now_ns();
    let mut cf8 = platform::cf8();
    let nics = platform::find_class(&mut cf8, ETHERNET_CLASS[0], ETHERNET_CLASS[1]);
    let mut chosen = None;
    for f in nics.iter() {
        let (vendor, device) = (f.info.vendor, f.info.device);
        match paranoid_e1000::Part::from_ids(vendor, device) {
            Ok(part) if chosen.is_none() => chosen = Some((*f, part)),
            Ok(_) => {}
            Err(e) => {
                paranoid::pci::command::fence(&mut cf8, f.address());
                r.found.nic = NicState::Refused;
                r.report.device(
                    format_args!("nic {} ({vendor:04x}:{device:04x})", f.address()),
                    format_args!("not driven"),
                    format_args!("refused ({e}): bus mastering off, left fenced"),
                );
            }
        }
    }
    let chosen = match r.config.nic_mac {
        Some(mac) => named(r, &mut cf8, &nics, mac)?,
        None => match chosen {
            Some((f, part)) => {
                let (regs, _) =
                    platform::map_bar0(&mut cf8, f.address()).map_err(|e| fail("e1000 bar", e))?;
                Some((f, part, regs))
            }
            None => None,
        },
    };
    let Some((f, part, mut regs)) = chosen else {
        r.report.step(
            "nic",
            t,
            r.clock.now_ns(),
            format_args!("no supported NIC (of the name asked for): continuing without network"),
        );
        return Ok(None);
    };
    println!("recovery: NIC {} is an {}", f.address(), part.name());
    let found = InheritedState::read(&mut regs);
    if let Some(unit) = unit {
        iommu::attach(unit, f.requester_id())?;
    }
    let nic = E1000::new(
        regs,
        cf8,
        f.address(),
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
                format_args!("e1000 {}", f.address()),
                format_args!("{found}"),
                format_args!(
                    "ready in {:?}, {} escalation(s), mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    ready.trace.total(),
                    ready.trace.escalations(),
                    m[0], m[1], m[2], m[3], m[4], m[5]
                ),
            );
            r.report
                .step("e1000 init", t, r.clock.now_ns(), format_args!("ready"));
            r.found.nic = NicState::Up;
            Ok(Some(nic))
        }
        Err(failure) => {
            println!("{}", failure.trace);
            r.report.device(
                format_args!("e1000 {}", f.address()),
                format_args!("{found}"),
                format_args!("fenced: {}", failure.cause),
            );
            r.report.step(
                "e1000 init",
                t,
                r.clock.now_ns(),
                format_args!("fenced, continuing without network"),
            );
            r.found.nic = NicState::Fenced;
            Ok(None)
        }
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

/// Builds an IPv4/UDP broadcast frame to `port` carrying `payload` into `out`;
/// returns its length (0 when it does not fit).
fn udp_frame(out: &mut [u8], mac: [u8; 6], port: u16, payload: &[u8]) -> usize {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let total = (14 + ip_len).max(60);
    let Some(frame) = out.get_mut(..total) else {
        return 0;
    };
    frame.fill(0);
    frame[..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut frame[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&[192, 0, 2, 1]); // TEST-NET-1: no address configured
    ip[16..20].copy_from_slice(&[255, 255, 255, 255]);
    let sum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    frame[34..36].copy_from_slice(&(port - 1).to_be_bytes());
    frame[36..38].copy_from_slice(&port.to_be_bytes());
    frame[38..40].copy_from_slice(&(udp_len as u16).to_be_bytes());
    frame[42..42 + payload.len()].copy_from_slice(payload);
    total
}

/// Transmits `frame`, waiting (bounded) for ring space once if it is full.
fn send<W: Window>(
    nic: &mut Nic<W>,
    frame: &[u8],
    clock: &RecoveryClock,
) -> Result<(), E1000Error> {
    match nic.transmit(frame) {
        Err(E1000Error::TxRingFull) => {
            nic.flush_tx(Deadline::after(
                clock,
                core::time::Duration::from_millis(50),
            ))?;
            nic.transmit(frame)
        }
        other => other,
    }
}

/// A heartbeat frame to the cluster: IPv4/UDP broadcast to [`HEARTBEAT_PORT`].
pub struct UdpBeat<'n, W: Window> {
    nic: &'n RefCell<Nic<W>>,
    clock: RecoveryClock,
    seq: u32,
}

impl<'n, W: Window> UdpBeat<'n, W> {
    /// Heartbeats through `nic` (shared with the dump stream).
    pub fn new(nic: &'n RefCell<Nic<W>>, clock: RecoveryClock) -> Self {
        Self { nic, clock, seq: 0 }
    }
}

impl<W: Window> Heartbeat for UdpBeat<'_, W> {
    fn name(&self) -> &'static str {
        "udp heartbeat"
    }

    fn beat(&mut self) -> Result<(), &'static str> {
        let mut payload = [0u8; 32];
        let n = HEARTBEAT_MAGIC.len();
        payload[..n].copy_from_slice(HEARTBEAT_MAGIC);
        payload[n..n + 4].copy_from_slice(&self.seq.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        let mut nic = self.nic.borrow_mut();
        let mut frame = [0u8; 128];
        let len = udp_frame(&mut frame, nic.mac().0, HEARTBEAT_PORT, &payload[..n + 4]);
        send(&mut nic, frame.get(..len).ok_or("frame")?, &self.clock).map_err(|_| "transmit")
    }
}

/// Streams the dump over UDP ([`STREAM_PORT`]): each chunk cut into datagrams,
/// then an end record (`paranoid_dump::stream`).
pub struct Streamer<'n, W: Window> {
    nic: &'n RefCell<Nic<W>>,
    clock: RecoveryClock,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that could not be sent.
    pub failed: u64,
}

impl<'n, W: Window> Streamer<'n, W> {
    /// A stream through `nic` (shared with the heartbeats).
    pub fn new(nic: &'n RefCell<Nic<W>>, clock: RecoveryClock) -> Self {
        Self {
            nic,
            clock,
            sent: 0,
            failed: 0,
        }
    }

    fn datagram(&mut self, payload: &[u8]) {
        let mut nic = self.nic.borrow_mut();
        let mut frame = [0u8; 1514];
        let len = udp_frame(&mut frame, nic.mac().0, STREAM_PORT, payload);
        match frame
            .get(..len)
            .filter(|f| !f.is_empty())
            .map(|f| send(&mut nic, f, &self.clock))
        {
            Some(Ok(())) => self.sent += 1,
            _ => self.failed += 1,
        }
    }

    /// Sends one chunk.
    pub fn chunk(&mut self, c: &ChunkHeader, data: &[u8]) {
        let mut record = [0u8; DATA_HEADER + DATA_PER_RECORD];
        for (k, piece) in data.chunks(DATA_PER_RECORD).enumerate() {
            let offset = (k * DATA_PER_RECORD) as u32;
            let n = encode_data(
                &mut record,
                c.index,
                c.phys,
                c.len,
                c.data_crc,
                offset,
                piece,
            );
            self.datagram(record.get(..n).unwrap_or(&[]));
        }
    }

    /// Sends the end record and waits (bounded) for the last frames to leave.
    pub fn end(&mut self, chunks: u64, bytes: u64, seed: u64, pattern: Range) {
        let mut record = [0u8; 64];
        let n = encode_end(&mut record, chunks, bytes, seed, pattern);
        self.datagram(record.get(..n).unwrap_or(&[]));
        let deadline = Deadline::after(&self.clock, core::time::Duration::from_millis(100));
        let _ = self.nic.borrow_mut().flush_tx(deadline);
    }
}
