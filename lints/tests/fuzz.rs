//! Fuzzed and mutated sources: the linter must never panic, whatever the input.

use std::panic::{catch_unwind, AssertUnwindSafe};

use cargo_paranoid::{lint_text, Config, Level, Session};
use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "fn",
    "pub",
    "let",
    "mut",
    "loop",
    "while",
    "for",
    "in",
    "if",
    "else",
    "match",
    "return",
    "break",
    "unsafe",
    "impl",
    "struct",
    "mod",
    "use",
    "self",
    "regs",
    "base",
    "mmio",
    "read32",
    "write32",
    "read_volatile",
    "write_volatile",
    "core::ptr::",
    "asm!",
    "\"in al, dx\"",
    "\"out dx, al\"",
    "out(\"al\")",
    "Port::new",
    "read",
    "write",
    "modify",
    "get",
    "set",
    "unwrap",
    "expect",
    "panic!",
    "#[paranoid_init]",
    "#[panic_handler]",
    "#[paranoid::allow(raw_mmio)]",
    "#[cfg_attr(any(), paranoid::allow(raw_mmio, reason = \"r\"))]",
    "// paranoid:allow(raw_mmio): r\n",
    "set_hook",
    "enable_dma",
    "reset",
    "poll",
    "deadline",
    "0xFFFF_FFFF",
    "!0",
    "u32::MAX",
    "0x1000",
    "as",
    "*const u32",
    "*mut u8",
    "usize",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ";",
    ",",
    ".",
    "=",
    "==",
    "<",
    ">",
    "<<",
    ">>",
    "+",
    "-",
    "*",
    "&",
    "|",
    "!",
    "?",
    "=>",
    "..",
    "..=",
    "::",
    "'a",
    "x",
    "v",
    "i",
    "0",
    "1",
    "\n",
    "\"s\"",
    "/*",
    "*/",
    "r#\"",
    "é",
    "\u{0}",
];

fn session() -> Session {
    Session::new(Config::with_defaults(), &[("all".into(), Level::Warn)]).expect("levels")
}

fn assert_no_panic(src: &str) {
    let s = session();
    let r = catch_unwind(AssertUnwindSafe(|| lint_text(&s, "fuzz.rs", src)));
    let diags = match r {
        Ok(d) => d,
        Err(_) => panic!("linter panicked on input:\n{src}"),
    };
    for d in &diags {
        assert!(
            !d.message.contains("internal error"),
            "internal error on input:\n{src}"
        );
        // Every span stays inside the text, so every renderer can run.
        for l in &d.labels {
            assert!(
                l.span.byte_start <= l.span.byte_end && l.span.byte_end <= src.len(),
                "{d:?}"
            );
        }
    }
    let _ = cargo_paranoid::render::human::render(&diags, false);
    let _ = cargo_paranoid::render::json::render(&diags);
    let _ = cargo_paranoid::render::sarif::render(&diags);
}

fn seeds() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/ui")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn token_soup(idx in proptest::collection::vec(0..TOKENS.len(), 0..120)) {
        let src: Vec<&str> = idx.iter().map(|&i| TOKENS[i]).collect();
        assert_no_panic(&src.join(" "));
    }

    #[test]
    fn wrapped_token_soup(idx in proptest::collection::vec(0..TOKENS.len(), 0..80)) {
        // Inside a function body the expression parsers get deeper.
        let src: Vec<&str> = idx.iter().map(|&i| TOKENS[i]).collect();
        assert_no_panic(&format!("#[paranoid_init] pub fn init(regs: &Regs) {{ {} }}", src.join(" ")));
    }

    #[test]
    fn truncated_real_files(which in 0usize..64, cut in 0.0f64..1.0) {
        let s = seeds();
        let src = &s[which % s.len()];
        let mut at = (src.len() as f64 * cut) as usize;
        while !src.is_char_boundary(at) {
            at -= 1;
        }
        assert_no_panic(&src[..at]);
    }

    #[test]
    fn mutated_bytes(which in 0usize..64, muts in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 1..12)) {
        let s = seeds();
        let mut bytes = s[which % s.len()].clone().into_bytes();
        for (pos, b) in muts {
            let i = ((bytes.len() as f64) * pos) as usize;
            if i < bytes.len() {
                bytes[i] = b;
            }
        }
        assert_no_panic(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 2000;
    let src = format!(
        "fn f() {{ let x = {}1{}; }}",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    assert_no_panic(&src);
    let blocks = format!("fn f() {}{}", "{ loop ".repeat(500), "}".repeat(501));
    assert_no_panic(&blocks);
}
