//! Machine profiles: the QEMU machine a scenario boots on.
//!
//! The standard machine (DESIGN.md "Platform facts") is q35 with an
//! intel-iommu, one e1000 and one NVMe controller on bus 0 with a 512-byte
//! namespace. A profile changes it in ordinary ways a real machine differs:
//! devices behind bridges and switches, other block sizes, several
//! controllers and namespaces, no IOMMU, other IOMMU options, other NICs,
//! more memory. The committed table is `tests/machines.toml`; a user's own
//! configuration is a file of the same form (`--machine-file`), or raw QEMU
//! options added to any profile (`--machine-args`).
//!
//! Every namespace gets its own raw image. The one the scenario writes (the
//! dump target) is [`RunDir::disk`]; every other one is filled with a
//! pattern before the run and must be byte-for-byte unchanged after it
//! ([`check_untouched`]), whatever the scenario.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::scenario::RunDir;

/// The default IOMMU device: VT-d without interrupt remapping.
pub const DEFAULT_IOMMU: &str = "intel-iommu,intremap=off";
/// Serial number of the standard machine's NVMe controller (the dump target).
pub const DEFAULT_SERIAL: &str = "paranoid0";
/// The q35 root bus. Every device the harness places without a bus goes
/// here by name: QEMU puts a bus-less device on the last bus created that
/// takes it, which is an extra host bridge's root bus when the machine has
/// one (`pxb-pcie`, where only bridges may go).
pub const ROOT_BUS: &str = "pcie.0";
/// NIC0's station address, set on the command line so the recovery kernel
/// can be told which NIC is the cluster's (`nic_mac=`) on a machine with
/// several. Not QEMU's first default address (52:54:00:12:34:56), which
/// another NIC without one would get.
pub const NIC0_MAC: &str = "52:54:00:70:61:30";
/// Size of a namespace that is not the target, when the profile does not say.
pub const DEFAULT_OTHER_MIB: u64 = 64;

/// One NVMe namespace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    /// Namespace id.
    #[serde(default = "one")]
    pub nsid: u32,
    /// Logical block size in bytes (512 or 4096 on QEMU).
    #[serde(default = "sector")]
    pub block_size: u32,
    /// Size of its image in MiB (the target's comes from the scenario).
    #[serde(default)]
    pub size_mib: Option<u64>,
}

fn one() -> u32 {
    1
}
fn sector() -> u32 {
    512
}

/// One NVMe controller and its namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// Its serial number (how the recovery settings name it).
    pub serial: String,
    /// The bus it sits on (`id` of a bridge or port declared in `pre`).
    #[serde(default)]
    pub bus: Option<String>,
    /// Its slot on that bus (`addr=`).
    #[serde(default)]
    pub addr: Option<String>,
    /// Its namespaces (default: nsid 1 with 512-byte blocks).
    #[serde(default = "one_namespace")]
    pub namespaces: Vec<Namespace>,
}

fn one_namespace() -> Vec<Namespace> {
    vec![Namespace {
        nsid: 1,
        block_size: 512,
        size_mib: None,
    }]
}

/// The namespace the scenario's kernels write: named by controller serial
/// number and namespace id, never by slot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Controller serial number.
    pub serial: String,
    /// Namespace id.
    #[serde(default = "one")]
    pub nsid: u32,
}

/// What a main-job run on this machine must show, beyond the checks every
/// run gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `None`: a verified dump. `Some(reason)`: the recovery kernel must refuse
    /// to write (no dump attempted), reporting `dump_refused=<reason>`.
    #[serde(default)]
    pub refusal: Option<String>,
    /// The NIC outcome the recovery reports (`up`, `refused`, `absent`;
    /// default: `up` when the machine has a NIC, `absent` otherwise).
    #[serde(default)]
    pub nic: Option<String>,
    /// The PCI address the dump target must be found at (proves the
    /// topology walk reached it), e.g. `0000:01:00.0`.
    #[serde(default)]
    pub target_pci: Option<String>,
}

/// A machine profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// Its name (`--machine NAME`, and the suffix of its run directories).
    pub name: String,
    /// One line on how it differs from the standard machine.
    #[serde(default)]
    pub about: String,
    /// Guest memory (`-m`), overriding the scenario's.
    #[serde(default)]
    pub memory: Option<String>,
    /// More `-machine q35,...` options (e.g. `kernel-irqchip=split`).
    #[serde(default)]
    pub machine_options: Option<String>,
    /// The IOMMU device, or `none` for a machine without one.
    #[serde(default = "default_iommu")]
    pub iommu: String,
    /// The NIC model kernel A and the recovery kernel find (`e1000`,
    /// `e1000-82544gc`, `e1000e`, ...), or `none`.
    #[serde(default = "default_nic")]
    pub nic: String,
    /// The bus of that NIC (`id` of a bridge in `pre`).
    #[serde(default)]
    pub nic_bus: Option<String>,
    /// Its slot on that bus.
    #[serde(default)]
    pub nic_addr: Option<String>,
    /// NVMe controllers, in command-line (and so bus) order.
    #[serde(default = "default_nvme")]
    pub nvme: Vec<Controller>,
    /// The namespace scenarios write.
    #[serde(default = "default_target")]
    pub target: Target,
    /// QEMU arguments before the devices (buses, bridges, switches).
    #[serde(default)]
    pub pre: Vec<String>,
    /// QEMU arguments after the devices.
    #[serde(default)]
    pub post: Vec<String>,
    /// What a main-job run must show.
    #[serde(default)]
    pub expect: Expect,
}

fn default_iommu() -> String {
    DEFAULT_IOMMU.to_string()
}
fn default_nic() -> String {
    "e1000".to_string()
}
fn default_nvme() -> Vec<Controller> {
    vec![Controller {
        serial: DEFAULT_SERIAL.to_string(),
        bus: None,
        addr: None,
        namespaces: one_namespace(),
    }]
}
fn default_target() -> Target {
    Target {
        serial: DEFAULT_SERIAL.to_string(),
        nsid: 1,
    }
}

/// The file of the committed profiles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    machine: Vec<Machine>,
}

/// A namespace image of a run: where it is, whether it is the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Controller serial number.
    pub serial: String,
    /// Namespace id.
    pub nsid: u32,
    /// Block size.
    pub block_size: u32,
    /// Its file.
    pub path: PathBuf,
    /// Whether the scenario writes it.
    pub target: bool,
    /// Its size in bytes.
    pub size: u64,
}

impl Default for Machine {
    fn default() -> Self {
        Self::standard()
    }
}

impl Machine {
    /// The standard machine.
    pub fn standard() -> Self {
        Self {
            name: "standard".to_string(),
            about: "q35, VT-d, e1000 (82540EM) and NVMe on bus 0, 512-byte blocks".to_string(),
            memory: None,
            machine_options: None,
            iommu: default_iommu(),
            nic: default_nic(),
            nic_bus: None,
            nic_addr: None,
            nvme: default_nvme(),
            target: default_target(),
            pre: Vec::new(),
            post: Vec::new(),
            expect: Expect::default(),
        }
    }

    /// True for the standard machine (its runs keep the plain directory names).
    pub fn is_standard(&self) -> bool {
        self.name == "standard"
    }

    /// Whether the machine has an IOMMU.
    pub fn has_iommu(&self) -> bool {
        self.iommu != "none"
    }

    /// The `iommu=` the recovery kernel must report: `vtd` for a VT-d unit
    /// that translates, `no-translation` for one started with
    /// `dma-translation=off` (it remaps interrupts only: CAP.SAGAW = 0),
    /// `absent` without one.
    pub fn expected_iommu(&self) -> &'static str {
        if !self.has_iommu() {
            "absent"
        } else if self.iommu.split(',').any(|o| o == "dma-translation=off") {
            "no-translation"
        } else {
            "vtd"
        }
    }

    /// Whether the machine has a NIC.
    pub fn has_nic(&self) -> bool {
        self.nic != "none"
    }

    /// Checks the profile makes sense: unique serials and nsids, the target
    /// exists unless a refusal is expected, block sizes QEMU takes.
    ///
    /// # Errors
    ///
    /// What is wrong, naming the profile.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |why: String| Err(format!("machine `{}`: {why}", self.name));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return bad("names are letters, digits and dashes".into());
        }
        let mut serials: Vec<&str> = self.nvme.iter().map(|c| c.serial.as_str()).collect();
        serials.sort_unstable();
        let n = serials.len();
        serials.dedup();
        if serials.len() != n {
            return bad("two controllers with one serial number".into());
        }
        for c in &self.nvme {
            if c.serial.is_empty() || c.serial.contains([' ', ',', '=']) {
                return bad(format!("serial `{}`: no spaces, commas or `=`", c.serial));
            }
            if c.namespaces.is_empty() {
                return bad(format!("controller `{}` has no namespace", c.serial));
            }
            let mut ids: Vec<u32> = c.namespaces.iter().map(|n| n.nsid).collect();
            ids.sort_unstable();
            let k = ids.len();
            ids.dedup();
            if ids.len() != k || ids.contains(&0) {
                return bad(format!("controller `{}`: nsids unique, not 0", c.serial));
            }
            for ns in &c.namespaces {
                if !matches!(ns.block_size, 512 | 1024 | 2048 | 4096) {
                    return bad(format!("block size {} (512..4096)", ns.block_size));
                }
            }
        }
        if let Err(e) = self.max_ram_below_4g() {
            return bad(e);
        }
        let target_exists = self.nvme.iter().any(|c| {
            c.serial == self.target.serial
                && c.namespaces.iter().any(|n| n.nsid == self.target.nsid)
        });
        if !target_exists && self.expect.refusal.is_none() {
            return bad(format!(
                "target {}/{} is not on the machine and no refusal is expected",
                self.target.serial, self.target.nsid
            ));
        }
        Ok(())
    }

    /// QEMU's `max-ram-below-4g` for this machine, in bytes (`None`: not
    /// set): found in `machine_options` or in a `-machine` option among the
    /// raw arguments (`--machine-args '-machine max-ram-below-4g=1G'`). The
    /// q35 machine keeps at most that much RAM below 4 GiB, so the layout the
    /// host verifies the dump against depends on it.
    ///
    /// # Errors
    ///
    /// A value that is not a size QEMU takes (`1G`, `1024M`, bytes).
    pub fn max_ram_below_4g(&self) -> Result<Option<u64>, String> {
        let mut found = None;
        let mut options: Vec<&str> = self.machine_options.iter().map(String::as_str).collect();
        for args in [&self.pre, &self.post] {
            let mut words = args.iter();
            while let Some(w) = words.next() {
                if w == "-machine" || w == "-M" {
                    options.extend(words.next().map(String::as_str));
                }
            }
        }
        for o in options.iter().flat_map(|o| o.split(',')) {
            if let Some(v) = o.strip_prefix("max-ram-below-4g=") {
                let bytes = qemu_size(v).ok_or_else(|| {
                    format!("max-ram-below-4g={v}: not a size (`1G`, `1024M`, bytes)")
                })?;
                // QEMU takes the last value given.
                found = Some(bytes);
            }
        }
        Ok(found)
    }

    /// Whether a controller needs the `nvme-ns` form (several namespaces,
    /// another nsid or block size) rather than the one-drive `nvme` form.
    fn needs_ns_devices(c: &Controller) -> bool {
        !matches!(c.namespaces.as_slice(), [ns] if ns.nsid == 1 && ns.block_size == 512)
    }

    /// The namespace images of a run in `dir`; the target is `dir.disk()`
    /// with `target_size` bytes.
    pub fn images(&self, dir: &RunDir, target_size: u64) -> Vec<Image> {
        let mut out = Vec::new();
        for c in &self.nvme {
            for ns in &c.namespaces {
                let target = c.serial == self.target.serial && ns.nsid == self.target.nsid;
                let (path, size) = if target {
                    (dir.disk(), target_size)
                } else {
                    (
                        dir.file(&format!("nvme-{}-ns{}.img", c.serial, ns.nsid)),
                        ns.size_mib.unwrap_or(DEFAULT_OTHER_MIB) << 20,
                    )
                };
                out.push(Image {
                    serial: c.serial.clone(),
                    nsid: ns.nsid,
                    block_size: ns.block_size,
                    path,
                    target,
                    size,
                });
            }
        }
        out
    }

    /// QEMU's `-machine` value.
    pub fn machine_arg(&self) -> String {
        match &self.machine_options {
            Some(o) if !o.is_empty() => format!("q35,{o}"),
            _ => "q35".to_string(),
        }
    }

    /// The device arguments: IOMMU, buses, NIC0 (connected to `netdev`), the
    /// NVMe controllers with their namespaces on `images`, then `post`.
    pub fn device_args(&self, netdev: Option<&str>, images: &[Image]) -> Vec<String> {
        let mut a = Vec::new();
        if self.has_iommu() {
            // Before the PCI devices it translates.
            a.push("-device".to_string());
            a.push(self.iommu.clone());
        }
        a.extend(self.pre.iter().cloned());
        if self.has_nic() {
            let mut nic = format!("{},romfile=,mac={NIC0_MAC}", self.nic);
            if let Some(id) = netdev {
                nic.push_str(&format!(",netdev={id}"));
            }
            nic.push_str(&format!(
                ",bus={}",
                self.nic_bus.as_deref().unwrap_or(ROOT_BUS)
            ));
            if let Some(addr) = &self.nic_addr {
                nic.push_str(&format!(",addr={addr}"));
            }
            a.push("-device".into());
            a.push(nic);
        }
        for (ci, c) in self.nvme.iter().enumerate() {
            let mut place = format!(",bus={}", c.bus.as_deref().unwrap_or(ROOT_BUS));
            if let Some(addr) = &c.addr {
                place.push_str(&format!(",addr={addr}"));
            }
            let drive = |ns: &Namespace| format!("nv{ci}n{}", ns.nsid);
            for ns in &c.namespaces {
                let Some(img) = images
                    .iter()
                    .find(|i| i.serial == c.serial && i.nsid == ns.nsid)
                else {
                    continue;
                };
                a.push("-drive".into());
                a.push(format!(
                    "file={},if=none,id={},format=raw",
                    img.path.display(),
                    drive(ns)
                ));
            }
            if Self::needs_ns_devices(c) {
                a.push("-device".into());
                a.push(format!("nvme,id=nvc{ci},serial={}{place}", c.serial));
                for ns in &c.namespaces {
                    a.push("-device".into());
                    a.push(format!(
                        "nvme-ns,bus=nvc{ci},drive={},nsid={},logical_block_size={bs},physical_block_size={bs}",
                        drive(ns),
                        ns.nsid,
                        bs = ns.block_size
                    ));
                }
            } else if let Some(ns) = c.namespaces.first() {
                a.push("-device".into());
                a.push(format!(
                    "nvme,serial={},drive={}{place}",
                    c.serial,
                    drive(ns)
                ));
            }
        }
        a.extend(self.post.iter().cloned());
        a
    }

    /// The recovery settings that name the target (`dump_serial=`,
    /// `dump_nsid=`) and, on a machine with a NIC, NIC0 (`nic_mac=`).
    pub fn target_words(&self) -> String {
        let mut words = format!(
            "dump_serial={} dump_nsid={}",
            self.target.serial, self.target.nsid
        );
        if self.has_nic() {
            words.push_str(&format!(" nic_mac={NIC0_MAC}"));
        }
        words
    }

    /// The target namespace's block size (512 when the target is absent).
    pub fn target_block_size(&self) -> u32 {
        self.nvme
            .iter()
            .filter(|c| c.serial == self.target.serial)
            .flat_map(|c| c.namespaces.iter())
            .find(|n| n.nsid == self.target.nsid)
            .map_or(512, |n| n.block_size)
    }

    /// The NIC outcome a run must report.
    pub fn expected_nic(&self) -> &str {
        match &self.expect.nic {
            Some(n) => n,
            None if self.has_nic() => "up",
            None => "absent",
        }
    }
}

/// Parses a profile file (the committed table's form: `[[machine]]` tables).
///
/// # Errors
///
/// TOML errors, unknown keys, invalid profiles, duplicate names.
pub fn parse(text: &str) -> Result<Vec<Machine>, String> {
    let table: Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for m in &table.machine {
        m.validate()?;
        if names.contains(&m.name) {
            return Err(format!("machine `{}` defined twice", m.name));
        }
        names.push(m.name.clone());
    }
    Ok(table.machine)
}

/// The committed profiles (`tests/machines.toml`).
///
/// # Errors
///
/// When the table cannot be read or is invalid.
pub fn committed() -> Result<Vec<Machine>, String> {
    let path = crate::repo_root().join("tests").join("machines.toml");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The machine to run on: a committed profile by name, or one from a user's
/// file, with `extra` raw QEMU options appended.
///
/// # Errors
///
/// Unknown names (listing the known ones), unreadable files.
pub fn select(
    name: Option<&str>,
    file: Option<&Path>,
    extra: &[String],
) -> Result<Machine, String> {
    let pool = match file {
        Some(f) => {
            let text = fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            parse(&text).map_err(|e| format!("{}: {e}", f.display()))?
        }
        None => committed()?,
    };
    let mut m = match (name, file) {
        (None, None) => Machine::standard(),
        (None, Some(_)) => pool
            .first()
            .cloned()
            .ok_or("the machine file defines no machine")?,
        (Some(n), _) => match pool.iter().find(|m| m.name == n) {
            Some(m) => m.clone(),
            None if n == "standard" => Machine::standard(),
            None => {
                let known: Vec<&str> = pool.iter().map(|m| m.name.as_str()).collect();
                return Err(format!(
                    "unknown machine `{n}`; known: {}",
                    known.join(", ")
                ));
            }
        },
    };
    if !extra.is_empty() {
        let standard = m.is_standard();
        // `-m` sets the machine's memory (so the RAM backend the ground-truth
        // check keeps, and the layout check, are sized to match) rather than
        // overriding it behind the harness's back.
        let mut words = extra.iter();
        while let Some(w) = words.next() {
            if w == "-m" {
                let size = words.next().ok_or("`-m` needs a size")?;
                if memory_bytes(size).is_none() {
                    return Err(format!(
                        "`-m {size}`: give the size as a whole number of MiB or GiB (`-m 512M`, `-m 2G`)"
                    ));
                }
                m.memory = Some(size.clone());
            } else {
                m.post.push(w.clone());
            }
        }
        if standard {
            m.name = "custom".to_string();
        }
        m.max_ram_below_4g()?;
    }
    Ok(m)
}

/// The bytes of a machine's memory size, `N M` or `N G` (whole numbers, the
/// forms the harness reads back); `None` for any other form.
pub fn memory_bytes(size: &str) -> Option<u64> {
    let (n, unit) = size.split_at(size.len().saturating_sub(1));
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = n.parse().ok()?;
    match unit {
        "G" => n.checked_mul(1 << 30),
        "M" => n.checked_mul(1 << 20),
        _ => None,
    }
}

/// A size as QEMU reads it (`qemu_strtosz`): whole bytes, or a whole number
/// with a `K`, `M`, `G` or `T` suffix (either case); `None` otherwise.
pub fn qemu_size(s: &str) -> Option<u64> {
    let (n, shift) = match s.as_bytes().last()?.to_ascii_uppercase() {
        b'K' => (&s[..s.len() - 1], 10),
        b'M' => (&s[..s.len() - 1], 20),
        b'G' => (&s[..s.len() - 1], 30),
        b'T' => (&s[..s.len() - 1], 40),
        b'0'..=b'9' => (s, 0),
        _ => return None,
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Splits `--machine-args` text into words (single and double quotes group).
pub fn split_args(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut any = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

/// The byte at `offset` of a namespace image that is not the target: a
/// pattern that differs per image, so a write of zeros, a copy from another
/// disk or a shifted block are all caught.
fn guard_byte(salt: u64, offset: u64) -> u8 {
    let x = (offset / 8)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(salt);
    (x >> (8 * (offset % 8))) as u8 ^ (x >> 56) as u8
}

fn salt(img: &Image) -> u64 {
    img.serial.bytes().fold(u64::from(img.nsid), |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Creates every namespace image: the target sparse (the scenario's prepare
/// hook fills it), the others with their guard pattern.
///
/// # Errors
///
/// File errors.
pub fn create_images(images: &[Image]) -> Result<(), String> {
    for img in images {
        let f = File::create(&img.path).map_err(|e| format!("{}: {e}", img.path.display()))?;
        if img.target {
            f.set_len(img.size).map_err(|e| e.to_string())?;
            continue;
        }
        let mut w = std::io::BufWriter::new(f);
        let s = salt(img);
        let mut block = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < img.size {
            let n = (img.size - at).min(block.len() as u64) as usize;
            for (i, b) in block[..n].iter_mut().enumerate() {
                *b = guard_byte(s, at + i as u64);
            }
            w.write_all(&block[..n]).map_err(|e| e.to_string())?;
            at += n as u64;
        }
        w.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Compares every image that is not the target with its guard pattern.
///
/// # Errors
///
/// The first image that changed: how many bytes differ and the first
/// differing offset.
pub fn check_untouched(images: &[Image]) -> Result<u64, String> {
    let mut checked = 0;
    for img in images.iter().filter(|i| !i.target) {
        let mut f = File::open(&img.path).map_err(|e| format!("{}: {e}", img.path.display()))?;
        let len = f.metadata().map_err(|e| e.to_string())?.len();
        if len != img.size {
            return Err(format!(
                "{}: size {len}, was {}",
                img.path.display(),
                img.size
            ));
        }
        let s = salt(img);
        let mut buf = vec![0u8; 1 << 20];
        let (mut at, mut differ, mut first) = (0u64, 0u64, None);
        while at < len {
            let n = (len - at).min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
            for (i, &b) in buf[..n].iter().enumerate() {
                if b != guard_byte(s, at + i as u64) {
                    differ += 1;
                    first.get_or_insert(at + i as u64);
                }
            }
            at += n as u64;
        }
        if let Some(first) = first {
            return Err(format!(
                "namespace {} of controller {} (not the target) changed: {differ} bytes differ, first at byte {first:#x}",
                img.nsid, img.serial
            ));
        }
        checked += 1;
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_table_is_valid_and_covers_the_classes() {
        let all = committed().unwrap();
        assert!(all.len() >= 10, "{} profiles", all.len());
        let has = |f: &dyn Fn(&Machine) -> bool| all.iter().any(f);
        assert!(
            has(&|m| m.nvme.iter().any(|c| c.bus.is_some())),
            "nvme behind a port"
        );
        assert!(has(&|m| m.nic_bus.is_some()), "nic behind a bridge");
        assert!(has(&|m| m.target_block_size() == 4096), "4 KiB blocks");
        assert!(has(
            &|m| m.nvme.len() >= 2 && m.nvme.first().is_some_and(|c| c.serial != m.target.serial)
        ));
        assert!(has(&|m| !m.has_iommu()), "no IOMMU");
        assert!(has(&|m| m.iommu.contains("aw-bits=48")));
        assert!(has(&|m| m.iommu.contains("caching-mode=on")));
        assert!(has(&|m| m.nic == "e1000-82544gc") && has(&|m| m.nic == "e1000-82545em"));
        assert!(
            has(&|m| m.expected_nic() == "refused"),
            "an unsupported NIC"
        );
        assert!(
            has(&|m| m.memory.as_deref() == Some("6G")),
            "RAM above 4 GiB"
        );
        assert!(
            has(&|m| m.has_nic()
                && m.pre
                    .iter()
                    .any(|a| a.starts_with("e1000,") || a.starts_with("e1000-"))),
            "a second NIC of the driver's family ahead of NIC0"
        );
        assert!(
            has(&|m| m.expected_iommu() == "no-translation"),
            "a VT-d unit that translates no DMA"
        );
        assert!(
            has(&|m| m.max_ram_below_4g().ok().flatten().is_some()),
            "max-ram-below-4g"
        );
        assert!(
            has(&|m| m.pre.iter().any(|a| a.starts_with("pxb-pcie"))),
            "a second host bridge"
        );
    }

    #[test]
    fn standard_machine_args_match_the_design() {
        let m = Machine::standard();
        let dir = RunDir {
            dir: PathBuf::from("/r"),
        };
        let images = m.images(&dir, 1 << 20);
        assert_eq!(images.len(), 1);
        assert!(images[0].target);
        let a = m.device_args(Some("h0"), &images).join(" ");
        assert_eq!(
            a,
            "-device intel-iommu,intremap=off -device e1000,romfile=,mac=52:54:00:70:61:30,netdev=h0,bus=pcie.0 \
             -drive file=/r/nvme.img,if=none,id=nv0n1,format=raw -device nvme,serial=paranoid0,drive=nv0n1,bus=pcie.0"
        );
    }

    #[test]
    fn namespaces_and_buses_use_nvme_ns_devices() {
        let text = r#"
            [[machine]]
            name = "t"
            iommu = "none"
            nic = "none"
            pre = ["-device", "pcie-root-port,id=rp1,chassis=1,slot=1"]
            target = { serial = "b", nsid = 2 }
            [[machine.nvme]]
            serial = "a"
            [[machine.nvme]]
            serial = "b"
            bus = "rp1"
            namespaces = [{ nsid = 1 }, { nsid = 2, block_size = 4096 }]
        "#;
        let m = parse(text).unwrap().remove(0);
        let dir = RunDir {
            dir: PathBuf::from("/r"),
        };
        let images = m.images(&dir, 1 << 20);
        assert_eq!(images.iter().filter(|i| i.target).count(), 1);
        let t = images.iter().find(|i| i.target).unwrap();
        assert_eq!((t.serial.as_str(), t.nsid, t.block_size), ("b", 2, 4096));
        let a = m.device_args(None, &images).join(" ");
        assert!(!a.contains("intel-iommu") && !a.contains("e1000"));
        assert!(a.contains("-device nvme,id=nvc1,serial=b,bus=rp1"));
        assert!(a.contains("nvme-ns,bus=nvc1,drive=nv1n2,nsid=2,logical_block_size=4096"));
        assert!(a.starts_with("-device pcie-root-port"));
        assert_eq!(m.target_words(), "dump_serial=b dump_nsid=2");
        assert_eq!(
            Machine::standard().target_words(),
            "dump_serial=paranoid0 dump_nsid=1 nic_mac=52:54:00:70:61:30"
        );
    }

    #[test]
    fn invalid_profiles_are_refused() {
        let dup = "[[machine]]\nname = \"x\"\n[[machine.nvme]]\nserial = \"a\"\n[[machine.nvme]]\nserial = \"a\"\n";
        assert!(parse(dup).unwrap_err().contains("one serial"));
        let absent = "[[machine]]\nname = \"x\"\ntarget = { serial = \"zz\" }\n";
        assert!(parse(absent).unwrap_err().contains("not on the machine"));
        let typo = "[[machine]]\nname = \"x\"\niommmu = \"none\"\n";
        assert!(parse(typo).is_err());
        assert!(select(Some("no-such-machine"), None, &[])
            .unwrap_err()
            .contains("known:"));
    }

    #[test]
    fn untouched_check_catches_any_change() {
        let dir = std::env::temp_dir().join(format!("paranoid-machine-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let img = Image {
            serial: "other".into(),
            nsid: 1,
            block_size: 512,
            path: dir.join("o.img"),
            target: false,
            size: 3 << 20,
        };
        create_images(std::slice::from_ref(&img)).unwrap();
        assert_eq!(check_untouched(std::slice::from_ref(&img)).unwrap(), 1);
        // One byte changed, in the middle of a block.
        let mut bytes = fs::read(&img.path).unwrap();
        bytes[(2 << 20) + 77] ^= 1;
        fs::write(&img.path, &bytes).unwrap();
        let e = check_untouched(std::slice::from_ref(&img)).unwrap_err();
        assert!(
            e.contains("1 bytes differ") && e.contains("0x20004d"),
            "{e}"
        );
        // The pattern of another image is not this one's.
        let twin = Image {
            serial: "twin".into(),
            path: dir.join("t.img"),
            ..img.clone()
        };
        create_images(std::slice::from_ref(&twin)).unwrap();
        fs::copy(&twin.path, &img.path).unwrap();
        assert!(check_untouched(std::slice::from_ref(&img)).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_m_in_machine_args_sets_the_memory() {
        let extra = |s: &str| split_args(s);
        let m = select(None, None, &extra("-m 2G -smp 2")).unwrap();
        assert_eq!(
            (m.memory.as_deref(), m.name.as_str()),
            (Some("2G"), "custom")
        );
        assert_eq!(m.post, vec!["-smp", "2"]);
        assert!(select(None, None, &extra("-m")).is_err());
        assert_eq!(memory_bytes("512M"), Some(512 << 20));
        assert_eq!(memory_bytes("6G"), Some(6 << 30));
        for bad in ["1.5G", "+2G", "G", "2T", ""] {
            assert_eq!(memory_bytes(bad), None, "{bad}");
        }
        assert!(select(None, None, &extra("-m 1.5G"))
            .unwrap_err()
            .contains("whole number"));
    }

    #[test]
    fn max_ram_below_4g_is_read_wherever_the_machine_sets_it() {
        let file = "[[machine]]\nname = \"x\"\nmemory = \"3G\"\nmachine_options = \"max-ram-below-4g=1G\"\n";
        let m = parse(file).unwrap().remove(0);
        assert_eq!(m.max_ram_below_4g(), Ok(Some(1 << 30)));
        let m = select(
            None,
            None,
            &split_args("-m 3G -machine q35,max-ram-below-4g=1536M"),
        )
        .unwrap();
        assert_eq!(m.max_ram_below_4g(), Ok(Some(1536 << 20)));
        assert_eq!(Machine::standard().max_ram_below_4g(), Ok(None));
        assert!(select(None, None, &split_args("-M max-ram-below-4g=lots"))
            .unwrap_err()
            .contains("not a size"));
        let bad = "[[machine]]\nname = \"x\"\nmachine_options = \"max-ram-below-4g=1.5G\"\n";
        assert!(parse(bad).unwrap_err().contains("not a size"));
        assert_eq!(qemu_size("1073741824"), Some(1 << 30));
        assert_eq!(qemu_size("2g"), Some(2 << 30));
        for bad in ["", "G", "-1G", "1GB", "0x10"] {
            assert_eq!(qemu_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_iommu_without_dma_translation_is_expected_as_such() {
        let m = |iommu: &str| Machine {
            iommu: iommu.to_string(),
            ..Machine::standard()
        };
        assert_eq!(Machine::standard().expected_iommu(), "vtd");
        assert_eq!(m("none").expected_iommu(), "absent");
        assert_eq!(
            m("intel-iommu,intremap=on,dma-translation=off").expected_iommu(),
            "no-translation"
        );
        assert_eq!(m("intel-iommu,dma-translation=on").expected_iommu(), "vtd");
    }

    #[test]
    fn machine_args_split_like_a_shell() {
        assert_eq!(
            split_args("-device 'nvme,serial=a b' -m 2G"),
            vec!["-device", "nvme,serial=a b", "-m", "2G"]
        );
        assert!(split_args("  ").is_empty());
    }
}
