//! Running the `cargo paranoid` CLI on a crate and reading its output.
//!
//! The JSON stream is read with `cargo_metadata::Message::parse_stream`, the
//! parser that tools consuming `cargo --message-format=json` use: a line it does
//! not accept as a cargo message (it turns those into `TextLine`) fails the run.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::Message;

/// One diagnostic as the scorer matches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diag {
    /// File relative to the crate root, `/`-separated.
    pub file: String,
    /// 1-based line of the primary span.
    pub line: usize,
    /// Lint name without `paranoid::`.
    pub lint: String,
    /// The message, for the findings list.
    pub message: String,
}

/// What one CLI run gave.
#[derive(Debug, Default)]
pub struct Output {
    /// Diagnostics in output order.
    pub diags: Vec<Diag>,
    /// `build-finished` lines seen.
    pub finished: usize,
    /// Lines the consumer did not accept, with why.
    pub rejected: Vec<String>,
}

/// Where cargo unpacked registry crates: every `$CARGO_HOME/registry/src/*`.
pub fn registry_src_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(home) = home else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(home.join("registry").join("src"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The unpacked source of `dir_name` (`name-version`) in the registry.
pub fn find_crate(dir_name: &str) -> Option<PathBuf> {
    registry_src_dirs()
        .into_iter()
        .map(|d| d.join(dir_name))
        .find(|d| d.join("Cargo.toml").is_file())
}

/// Runs the CLI in path mode on `root` (`cargo-paranoid paranoid . -W all
/// --message-format FORMAT`) and returns stdout.
///
/// # Errors
///
/// The program cannot be started, or it ends with an internal error: exit
/// status 2, a signal, or a panic message on stderr (a denied lint is 1, and
/// every lint is at warn here, so 0 is the only good status).
pub fn run_cli(bin: &Path, root: &Path, format: &str) -> Result<Vec<u8>, String> {
    let out = Command::new(bin)
        .current_dir(root)
        .args(["paranoid", ".", "-W", "all", "--message-format", format])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("panicked at") {
        return Err(format!(
            "{} on {} ({format}): {} {}",
            bin.display(),
            root.display(),
            out.status,
            stderr.lines().take(5).collect::<Vec<_>>().join(" | ")
        ));
    }
    Ok(out.stdout)
}

/// Reads a JSON stream the way cargo's consumers do.
pub fn parse_json(stdout: &[u8], root: &Path) -> Output {
    let mut o = Output::default();
    for m in Message::parse_stream(BufReader::new(stdout)) {
        match m {
            Ok(Message::CompilerMessage(cm)) => {
                let d = &cm.message;
                let lint = d
                    .code
                    .as_ref()
                    .map(|c| c.code.trim_start_matches("paranoid::").to_owned());
                let span = d.spans.iter().find(|s| s.is_primary);
                match (lint, span) {
                    (Some(lint), Some(s)) => o.diags.push(Diag {
                        file: relative(&s.file_name, root),
                        line: s.line_start,
                        lint,
                        message: d.message.clone(),
                    }),
                    _ => o.rejected.push(format!(
                        "diagnostic without code or primary span: {}",
                        d.message
                    )),
                }
            }
            Ok(Message::BuildFinished(_)) => o.finished += 1,
            Ok(Message::TextLine(t)) => o.rejected.push(format!("not a cargo message: {t}")),
            Ok(other) => o
                .rejected
                .push(format!("unexpected message kind: {other:?}")),
            Err(e) => o.rejected.push(format!("unreadable stream: {e}")),
        }
    }
    if o.finished != 1 {
        o.rejected
            .push(format!("{} build-finished lines (want 1)", o.finished));
    }
    o
}

/// `file` relative to `root`, `/`-separated, without a leading `./`.
fn relative(file: &str, root: &Path) -> String {
    let p = Path::new(file);
    let p = p.strip_prefix(root).unwrap_or(p);
    let s = p.to_string_lossy().replace('\\', "/");
    s.trim_start_matches("./").to_owned()
}

/// Lines of Rust source under `root` (every `.rs` file outside `target/`).
pub fn rust_lines(root: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|f| f != "target") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                n += std::fs::read_to_string(&p).map_or(0, |t| t.lines().count());
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"reason":"compiler-message","package_id":"x 0.1.0 (path+file:///x)","manifest_path":"/x/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"x","src_path":"/x/src/lib.rs","edition":"2021","doc":true,"doctest":true,"test":true},"message":{"$message_type":"diagnostic","message":"unbounded poll","code":{"code":"paranoid::unbounded_poll","explanation":null},"level":"warning","spans":[{"file_name":"src/lib.rs","byte_start":0,"byte_end":4,"line_start":7,"line_end":7,"column_start":1,"column_end":5,"is_primary":true,"text":[],"label":null,"suggested_replacement":null,"suggestion_applicability":null,"expansion":null}],"children":[],"rendered":"warning: unbounded poll\n"}}
{"reason":"build-finished","success":true}
"#;

    #[test]
    fn a_cargo_stream_is_accepted() {
        let o = parse_json(GOOD.as_bytes(), Path::new("/x"));
        assert!(o.rejected.is_empty(), "{:?}", o.rejected);
        assert_eq!(o.diags.len(), 1);
        assert_eq!(
            (o.diags[0].line, o.diags[0].lint.as_str()),
            (7, "unbounded_poll")
        );
    }

    /// Negative controls: the consumer must reject a truncated line and a
    /// message missing a field cargo always writes (`spans`).
    #[test]
    fn broken_lines_are_rejected() {
        let first = GOOD.lines().next().unwrap_or_default();
        let truncated = format!(
            "{}\n{}\n",
            &first[..first.len() / 2],
            GOOD.lines().nth(1).unwrap_or_default()
        );
        assert!(!parse_json(truncated.as_bytes(), Path::new("/x"))
            .rejected
            .is_empty());
        let no_spans = GOOD.replacen("\"spans\"", "\"spanz\"", 1);
        assert!(!parse_json(no_spans.as_bytes(), Path::new("/x"))
            .rejected
            .is_empty());
        let no_finish = format!("{first}\n");
        assert!(!parse_json(no_finish.as_bytes(), Path::new("/x"))
            .rejected
            .is_empty());
    }
}
