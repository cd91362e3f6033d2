//! `pci-discovery`: CF8 and ECAM see the same functions; the e1000 and the NVMe
//! controller are found with the right ids, class codes and sized BARs; BAR
//! sizing restores the BARs; capability walks terminate and find what the
//! devices advertise.

use core::fmt::Write;

use paranoid::pci::bar::{self, Bar};
use paranoid::pci::caps::{self, id};
use paranoid::pci::discover::FunctionInfo;
use paranoid::pci::topology::{AliasReason, Node};
use paranoid::pci::{offset, ConfigAccess, PciAddress};
use paranoid_boot::{println, BootInfo};

use crate::platform::{self, NVME_CLASS, Q35_ECAM_BASE};
use crate::report::{fail, Failure, Fields, Outcome};
use crate::{check, ensure};

/// Most functions remembered from a walk.
const MAX_FUNCTIONS: usize = platform::MAX_FUNCTIONS;

/// Walks the whole topology through `cfg` into `out`; returns how many
/// functions were found.
fn scan_all<C: ConfigAccess>(
    cfg: &mut C,
    out: &mut [Option<FunctionInfo>; MAX_FUNCTIONS],
) -> usize {
    let mut n = 0;
    for (slot, node) in out.iter_mut().zip(platform::topology(cfg).nodes()) {
        *slot = Some(node.info);
        n += 1;
    }
    n
}

/// Prints the PCI tree, one line per function with the bridges above it, its
/// kind and the requester id the IOMMU sees (used by the demo too).
pub fn print_inventory<C: ConfigAccess>(cfg: &mut C) {
    let topology = platform::topology(cfg);
    println!(
        "  PCI: {} functions on {} buses, {} refused",
        topology.nodes().count(),
        topology.buses(),
        topology.errors().count()
    );
    for e in topology.errors() {
        println!("  refused: {e}");
    }
    for node in topology.nodes() {
        let info = &node.info;
        let a = info.address;
        println!(
            "  {:indent$}{a}  {:04x}:{:04x}  class {:02x}{:02x}{:02x}  {}",
            "",
            info.vendor,
            info.device,
            info.class[0],
            info.class[1],
            info.class[2],
            describe(info),
            indent = 2 * node.path.depth()
        );
        let mut path = CapLine::default();
        for b in node.path.bridges() {
            let _ = write!(path, "{b}/");
        }
        let alias = match node.dma_alias() {
            Some(d) => match d.reason {
                AliasReason::PcieToPciBridge => "alias: behind PCIe-to-PCI bridge",
                AliasReason::ConventionalBridge => "alias: behind conventional bridge",
                AliasReason::PciToPcieBridge => "alias: behind PCI-to-PCIe bridge",
            },
            None => "own id",
        };
        let rid = node.requester_id();
        println!(
            "      path {}{a}  rid {:02x}:{:02x}.{} ({alias})  {:?}",
            path.as_str(),
            rid >> 8,
            (rid >> 3) & 0x1f,
            rid & 7,
            node.kind
        );
        if info.header_type != 0 {
            continue;
        }
        match bar::all(cfg, a) {
            Ok(bars) => {
                for (i, b) in bars.iter().enumerate() {
                    match *b {
                        Bar::Unused => {}
                        Bar::Memory {
                            base,
                            size,
                            is_64bit,
                            prefetchable,
                        } => println!(
                            "      BAR{i} mem{} {base:#010x} size {size:#x}{}",
                            if is_64bit { "64" } else { "32" },
                            if prefetchable { " prefetchable" } else { "" }
                        ),
                        Bar::Io { base, size } => {
                            println!("      BAR{i} io    {base:#06x} size {size:#x}")
                        }
                    }
                }
            }
            Err(e) => println!("      BARs: {e:?}"),
        }
        let mut line = CapLine::default();
        let walked = caps::walk(cfg, a, |c| {
            let _ = write!(line, " {:#04x}@{:#04x}", c.id, c.offset);
            true
        });
        match walked {
            Ok(()) => println!("      caps:{}", line.as_str()),
            Err(e) => println!("      caps: {e:?}"),
        }
    }
}

fn describe(info: &FunctionInfo) -> &'static str {
    match ((info.vendor, info.device), info.class) {
        (ids, _) if paranoid_e1000::SUPPORTED_IDS.contains(&ids) => "e1000 NIC",
        (_, NVME_CLASS) => "NVMe controller",
        (_, [0x06, 0x00, _]) => "host bridge",
        (_, [0x06, 0x01, _]) => "ISA bridge",
        (_, [0x01, 0x06, _]) => "SATA controller",
        (_, [0x0c, 0x05, _]) => "SMBus",
        (_, [0x00, 0xff, _]) | (_, [0xff, _, _]) => "unclassified",
        _ => "",
    }
}

/// A short text buffer for a capability list: the result line's text buffer
/// (a write that does not fit fails and writes nothing).
type CapLine = paranoid_boot::result::Text<192>;

/// The raw BAR registers, to check sizing restores them.
fn raw_bars<C: ConfigAccess>(cfg: &mut C, a: PciAddress) -> [u32; 6] {
    let mut v = [0u32; 6];
    for (i, slot) in v.iter_mut().enumerate() {
        *slot = cfg
            .read32(a, offset::BAR0 + 4 * i as u16)
            .into_raw_for_report();
    }
    v
}

/// The NVMe controller the self-checks read: the first, in walk order, found
/// by class and programming interface (any vendor, any place in the tree).
///
/// # Errors
///
/// When the machine has none.
pub fn first_nvme<C: ConfigAccess>(cfg: &mut C) -> Result<Node, &'static str> {
    platform::find_nvme(cfg)
        .iter()
        .next()
        .copied()
        .ok_or("no NVMe controller (class 01:08:02) anywhere in the tree")
}

/// The NIC the self-checks use: the first function, in walk order, of a part
/// the e1000 driver supports; `None` on a machine without one (no NIC, or a
/// NIC of another family), whose e1000 checks are then skipped and reported
/// as `e1000=absent` (the harness knows which machines have one).
pub fn first_e1000<C: ConfigAccess>(cfg: &mut C) -> Option<Node> {
    platform::find_any(cfg, &paranoid_e1000::SUPPORTED_IDS).ok()
}

/// Runs the discovery checks and prints the inventory.
pub fn run(boot: &'static BootInfo) -> Outcome {
    check_all(boot, true)
}

/// Runs the discovery checks without printing the inventory (the demo prints it first).
pub fn run_quiet(boot: &'static BootInfo) -> Outcome {
    check_all(boot, false)
}

fn check_all(boot: &'static BootInfo, inventory: bool) -> Outcome {
    let mut f = Fields::new();
    let region = check!(f, platform::ecam_region(boot), "ECAM from MCFG");
    f.add("ecam", format_args!("{:#x}", region.base));
    f.add(
        "ecam_buses",
        format_args!("{}-{}", region.start_bus, region.end_bus),
    );
    ensure!(
        f,
        region.base == Q35_ECAM_BASE,
        "MCFG ECAM base {:#x}, q35 uses {Q35_ECAM_BASE:#x}",
        region.base
    );
    let mut ecam = check!(f, platform::ecam(boot), "ECAM");
    let mut cf8 = platform::cf8();

    let (mut by_cf8, mut by_ecam) = ([None; MAX_FUNCTIONS], [None; MAX_FUNCTIONS]);
    let n = scan_all(&mut cf8, &mut by_cf8);
    let m = scan_all(&mut ecam, &mut by_ecam);
    f.add("functions", n);
    ensure!(
        f,
        n == m && by_cf8 == by_ecam,
        "CF8 found {n} functions, ECAM {m}, or they differ"
    );
    if inventory {
        print_inventory(&mut ecam);
    }

    let nvme = check!(f, first_nvme(&mut ecam), "NVMe");
    f.add("nvme", nvme.address());
    let nic = first_e1000(&mut ecam);
    match &nic {
        Some(nic) => {
            f.add("e1000", nic.address());
            check_e1000(&mut cf8, nic, &mut f)?;
        }
        None => {
            f.add("e1000", "absent");
        }
    }

    // NVMe: BAR0 64-bit memory, a power of two of at least 8 KiB: the
    // registers (4 KiB) and the doorbells after them. The MSI-X table may
    // share it (16 KiB on QEMU by default) or sit in its own BAR
    // (`msix-exclusive-bar=on`: 8 KiB).
    let before = raw_bars(&mut ecam, nvme.address());
    let bars = check!(f, bar::all(&mut ecam, nvme.address()), "NVMe BARs via ECAM");
    ensure!(
        f,
        raw_bars(&mut ecam, nvme.address()) == before,
        "NVMe BARs not restored after sizing"
    );
    match bars[0] {
        Bar::Memory {
            base,
            size,
            is_64bit: true,
            ..
        } if size >= 0x2000 && size.is_power_of_two() && base % size == 0 => {
            f.add("nvme_bar0", format_args!("{base:#x}+{size:#x}"));
        }
        other => return Err(fail(f, format_args!("NVMe BAR0 {other:?}"))),
    }

    // Capabilities: NVMe is PCIe with MSI-X; walks through both mechanisms agree.
    let pcie = check!(
        f,
        caps::find(&mut ecam, nvme.address(), id::PCI_EXPRESS),
        "NVMe caps"
    );
    let msix = check!(
        f,
        caps::find(&mut cf8, nvme.address(), id::MSIX),
        "NVMe caps via CF8"
    );
    ensure!(
        f,
        pcie.is_some() && msix.is_some(),
        "NVMe caps: PCIe {pcie:?} MSI-X {msix:?}"
    );
    let (mut standard, mut extended) = (0u32, 0u32);
    check!(
        f,
        caps::walk(&mut ecam, nvme.address(), |_| {
            standard += 1;
            true
        }),
        "NVMe walk"
    );
    check!(
        f,
        caps::walk_extended(&mut ecam, nvme.address(), |_| {
            extended += 1;
            true
        }),
        "NVMe extended walk"
    );
    f.add("nvme_caps", standard);
    f.add("nvme_ext_caps", extended);
    Ok(f)
}

/// The e1000's class, sized BARs (restored after sizing) and capability walk.
fn check_e1000<C: ConfigAccess>(cfg: &mut C, nic: &Node, f: &mut Fields) -> Result<(), Failure> {
    let mut g = core::mem::take(f);
    ensure!(
        g,
        nic.info.class == [0x02, 0x00, 0x00],
        "e1000 class {:?}",
        nic.info.class
    );
    // 8254x: BAR0 128 KiB 32-bit memory, BAR1 64 I/O ports.
    let before = raw_bars(cfg, nic.address());
    let bars = check!(g, bar::all(cfg, nic.address()), "e1000 BARs via CF8");
    ensure!(
        g,
        raw_bars(cfg, nic.address()) == before,
        "e1000 BARs not restored after sizing"
    );
    match bars {
        [Bar::Memory {
            base,
            size: 0x20000,
            is_64bit: false,
            ..
        }, Bar::Io { size: 0x40, .. }, ..]
            if base != 0 =>
        {
            g.add("e1000_bar0", format_args!("{base:#x}+0x20000"));
        }
        _ => {
            return Err(fail(
                g,
                format_args!("e1000 BARs {:?} {:?}", bars[0], bars[1]),
            ))
        }
    }
    let mut nic_caps = 0u32;
    check!(
        g,
        caps::walk(cfg, nic.address(), |_| {
            nic_caps += 1;
            true
        }),
        "e1000 walk"
    );
    g.add("e1000_caps", nic_caps);
    *f = g;
    Ok(())
}
