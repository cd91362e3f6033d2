//! `paranoid dump`: inspect, verify and extract crash dumps written by the
//! paranoid recovery kernel.

use std::path::PathBuf;
use std::process::ExitCode;

use paranoid_dump::elf::CoreWriter;
use paranoid_dump::reader::{read_header, verify, verify_stream};
use paranoid_dump::text;

const USAGE: &str = "\
usage: paranoid dump <verify|info|extract> IMAGE [options]
       paranoid dump verify-stream CAPTURE.pcap

  verify IMAGE    check every record and CRC, coverage of the memory ranges and
                  the crashed kernel's memory pattern; exit 0 when the dump is
                  complete and every word matched, 1 otherwise
  info IMAGE      print the header (crash note, ranges, timeline) only
  verify-stream CAPTURE.pcap
                  reassemble a dump streamed over UDP (port 7375) from a pcap
                  capture and verify every chunk's CRC and the memory pattern
  extract IMAGE --out FILE
                  verify and write the memory as an ELF64 core file (readelf -l FILE)

options:
  --offset BYTES  byte offset of the dump extent in IMAGE (default 0)
  --lba N         the extent's first block (with --lba-size, default 512)
  --lba-size N    block size for --lba";

struct Args {
    command: String,
    image: PathBuf,
    offset: u64,
    out: Option<PathBuf>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut command = None;
    let mut image = None;
    let (mut offset, mut lba, mut lba_size, mut out) = (None, None, 512u64, None);
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
    Ok(Args {
        command,
        image,
        offset,
        out,
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
                        println!(
                            "  range       : {:#012x}..{:#012x}",
                            r.start,
                            r.start + r.len
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        "verify" | "extract" => {
            let result = match &args.out {
                Some(out) => std::fs::File::create(out)
                    .and_then(|f| {
                        let h = std::fs::File::open(&args.image)
                            .map_err(Into::into)
                            .and_then(|mut img| read_header(&mut img, args.offset))
                            .map_err(std::io::Error::other)?;
                        CoreWriter::new(f, h.ranges())
                    })
                    .map_err(Into::into)
                    .and_then(|mut core| verify(&args.image, args.offset, |p, d| core.put(p, d))),
                None => verify(&args.image, args.offset, |_, _| Ok(())),
            };
            match result {
                Ok(v) => {
                    println!("{v}");
                    if let Some(out) = &args.out {
                        println!(
                            "  core file   : {} (inspect with `readelf -l {}`)",
                            out.display(),
                            out.display()
                        );
                    }
                    if v.is_good() {
                        println!("verdict: VERIFIED");
                        ExitCode::SUCCESS
                    } else {
                        println!("verdict: NOT VERIFIED");
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    println!("verdict: NOT VERIFIED ({e})");
                    ExitCode::from(1)
                }
            }
        }
        _ => ExitCode::from(2),
    }
}
