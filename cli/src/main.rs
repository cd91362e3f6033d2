//! `paranoid dump`: inspect, verify and extract crash dumps written by the
//! paranoid recovery kernel.

use std::path::PathBuf;
use std::process::ExitCode;

use paranoid_dump::elf::CoreWriter;
use paranoid_dump::reader::{
    q35_ram_limited, read_header, registers, verify, verify_stream, Options, Truth, Verdict,
};
use paranoid_dump::{text, Range};

const USAGE: &str = "\
usage: paranoid dump <verify|info|extract> IMAGE [options]
       paranoid dump verify-stream CAPTURE.pcap

  verify IMAGE    check every record, CRC and chunk encoding, coverage of the
                  plan and the crashed kernel's memory pattern (and, with the
                  options below, the guest's RAM layout and its real memory);
                  exit 0 when the dump is complete and every check passed, 3 when
                  it is a valid partial dump (the extent filled up; the missing
                  ranges are listed), 1 otherwise
  info IMAGE      print the header (crash note, CPU state, plan) only
  verify-stream CAPTURE.pcap
                  reassemble a dump streamed over UDP (port 7375) from a pcap
                  capture and verify every chunk's CRC and the memory pattern
  extract IMAGE --out FILE
                  verify and write the memory as an ELF64 core file with the
                  panicking CPU's registers (gdb KERNEL FILE; readelf -n -l FILE)

options:
  --ram-q35 BYTES the guest had BYTES of RAM on a q35 machine (QEMU -m): every
                  RAM byte must be dumped, listed missing or excluded on purpose
  --q35-max-below-4g BYTES
                  the q35 machine was started with -machine max-ram-below-4g=BYTES
                  (with --ram-q35: at most BYTES of its RAM below 4 GiB)
  --ram START+LEN a RAM range (repeatable; instead of --ram-q35)
  --hole START+LEN a range of the layout that is not RAM in the guest's memory
                  map (firmware; repeatable)
  --truth FILE    the guest's RAM as a file (QEMU memory-backend-file, q35
                  layout of --ram-q35): compare every dumped byte with it
  --offset BYTES  byte offset of the dump extent in IMAGE (default 0)
  --lba N         the extent's first block (with --lba-size, default 512)
  --lba-size N    block size for --lba";

struct Args {
    command: String,
    image: PathBuf,
    offset: u64,
    out: Option<PathBuf>,
    options: Options,
}

fn range_arg(s: &str) -> Result<Range, String> {
    let (a, b) = s
        .split_once('+')
        .ok_or_else(|| format!("not START+LEN: {s}"))?;
    match (parse_number(a), parse_number(b)) {
        (Some(start), Some(len)) if start.checked_add(len).is_some() => Ok(Range { start, len }),
        _ => Err(format!("not START+LEN: {s}")),
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut command = None;
    let mut image = None;
    let (mut offset, mut lba, mut lba_size, mut out) = (None, None, 512u64, None);
    let (mut q35, mut ram, mut holes, mut truth) = (None, Vec::new(), Vec::new(), None);
    let mut max_below_4g = None;
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |s: String| parse_number(&s).ok_or_else(|| format!("not a number: {s}"));
        match a.as_str() {
            "dump" if command.is_none() => {}
            "verify" | "info" | "extract" | "verify-stream" if command.is_none() => {
                command = Some(a)
            }
            "--offset" => offset = Some(number(value("--offset")?)?),
            "--lba" => lba = Some(number(value("--lba")?)?),
            "--lba-size" => lba_size = number(value("--lba-size")?)?,
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--ram-q35" => q35 = Some(number(value("--ram-q35")?)?),
            "--q35-max-below-4g" => max_below_4g = Some(number(value("--q35-max-below-4g")?)?),
            "--ram" => ram.push(range_arg(&value("--ram")?)?),
            "--hole" => holes.push(range_arg(&value("--hole")?)?),
            "--truth" => truth = Some(PathBuf::from(value("--truth")?)),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if image.is_none() && command.is_some() => image = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    let command = command.ok_or("missing command")?;
    let image = image.ok_or("missing IMAGE")?;
    let offset = offset.or(lba.map(|l| l * lba_size)).unwrap_or(0);
    if command == "extract" && out.is_none() {
        return Err("extract needs --out FILE".into());
    }
    if max_below_4g.is_some() && q35.is_none() {
        return Err("--q35-max-below-4g needs --ram-q35".into());
    }
    let q35 = q35.map(|bytes| q35_ram_limited(bytes, max_below_4g.unwrap_or(1 << 32)));
    if let Some(layout) = &q35 {
        ram.extend(layout.iter().copied());
    }
    let truth = match (truth, q35) {
        (Some(path), Some(layout)) => Some(Truth::of_layout(path, layout)),
        (Some(_), None) => return Err("--truth needs --ram-q35 (the file's layout)".into()),
        (None, _) => None,
    };
    let options = Options {
        ram: (!ram.is_empty()).then_some(ram),
        holes,
        truth,
    };
    Ok(Args {
        command,
        image,
        offset,
        out,
        options,
    })
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16).ok(),
        None => s.replace('_', "").parse().ok(),
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match args.command.as_str() {
        "verify-stream" => match std::fs::read(&args.image)
            .map_err(|e| e.to_string())
            .and_then(|p| verify_stream(&p))
        {
            Ok(v) if v.pattern_mismatches == 0 && v.pattern_words > 0 => {
                println!("{v}");
                println!("verdict: VERIFIED");
                ExitCode::SUCCESS
            }
            Ok(v) => {
                println!("{v}");
                println!("verdict: NOT VERIFIED");
                ExitCode::from(1)
            }
            Err(e) => {
                println!("verdict: NOT VERIFIED ({e})");
                ExitCode::from(1)
            }
        },
        "info" => {
            let header = std::fs::File::open(&args.image)
                .map_err(Into::into)
                .and_then(|mut f| read_header(&mut f, args.offset));
            match header {
                Ok(h) => {
                    println!(
                        "dump header at {:#x} of {}",
                        args.offset,
                        args.image.display()
                    );
                    println!("  complete    : {}", h.is_complete());
                    println!("  partial     : {}", h.is_partial());
                    println!("  policy      : {}", h.policy.name());
                    println!("  crash point : {}", text(&h.crash_point));
                    println!("  crash reason: {}", text(&h.crash_reason));
                    println!(
                        "  chunks      : {} x {} KiB, {} bytes",
                        h.chunk_count,
                        h.chunk_size / 1024,
                        h.total_bytes
                    );
                    for r in h.ranges() {
                        println!("  plan        : {:#012x}..{:#012x}", r.start, r.end());
                    }
                    for r in h.missing() {
                        println!("  missing     : {:#012x}..{:#012x}", r.start, r.end());
                    }
                    if h.cpu.valid {
                        print!("{}", registers(&h));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        "verify" | "extract" => match verify_and_extract(&args) {
            Ok(v) => {
                println!("{v}");
                if let Some(out) = &args.out {
                    println!(
                        "  core file   : {} (gdb KERNEL {}; readelf -n -l {})",
                        out.display(),
                        out.display(),
                        out.display()
                    );
                }
                match v.verdict() {
                    Verdict::Verified => {
                        println!("verdict: VERIFIED");
                        ExitCode::SUCCESS
                    }
                    Verdict::Partial => {
                        let missing: u64 = v.header.missing().iter().map(|r| r.len).sum();
                        println!(
                            "verdict: PARTIAL ({} bytes in {} ranges missing; everything present verified)",
                            missing,
                            v.header.missing().len()
                        );
                        ExitCode::from(3)
                    }
                    Verdict::NotVerified => {
                        println!("verdict: NOT VERIFIED");
                        ExitCode::from(1)
                    }
                }
            }
            Err(e) => {
                println!("verdict: NOT VERIFIED ({e})");
                ExitCode::from(1)
            }
        },
        _ => ExitCode::from(2),
    }
}

/// Verifies; with `--out`, verifies once to learn which ranges are present,
/// then again writing them into the core file.
fn verify_and_extract(
    args: &Args,
) -> Result<paranoid_dump::reader::Verified, Box<dyn std::error::Error>> {
    let v = verify(&args.image, args.offset, &args.options, |_, _| Ok(()))?;
    let Some(out) = &args.out else {
        return Ok(v);
    };
    let mut core = CoreWriter::new(std::fs::File::create(out)?, &v.header, &v.present)?;
    let v = verify(&args.image, args.offset, &Options::default(), |p, d| {
        core.put(p, d)
    })
    .map(|again| paranoid_dump::reader::Verified {
        header: again.header,
        ..v
    })?;
    core.finish()?;
    Ok(v)
}
