//! `cargo xtask counts`: the numbers issue 16 tracks, from the tracked sources.
//!
//! - unsafe blocks (`unsafe {`, found on the lexed token stream, so comments and
//!   strings do not count and blocks inside `macro_rules!` templates count once)
//!   per top-level folder, `examples/` and `examples/kernels/` split by crate;
//! - the `duplicates` summary line (the command must be on `PATH`);
//! - the largest files (lines) and functions (lines from `fn` to its closing
//!   brace, free functions, methods and trait default bodies).
//!
//! Files are those `git ls-files` lists, ending in `.rs`; test fixtures under
//! `lints/corpus`, `lints/tests/ui` and `macros/tests/ui` count under `lints` and
//! `macros` like the rest (they are source the tree carries).
//!
//! `cargo xtask counts --at REV` counts the tree of commit `REV` instead, with
//! this same code (the "before" columns of README's table): the files
//! `git ls-tree` lists at `REV`, exported with `git archive` into
//! `$TMPDIR/paranoid-counts-REV/` so `duplicates` reads exactly that tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::Visit;

/// How many of the largest files and functions are listed.
const TOP: usize = 12;

/// Prints the counts for the repository at `root`: its working tree, or with
/// `--at REV` the tree of commit `REV`.
///
/// # Errors
///
/// An unknown argument, or when git cannot list or export the files.
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    match args {
        [] => {
            let files = tracked_rust_files(root)?;
            count(root, &files)
        }
        [flag, rev] if flag == "--at" => {
            let (dir, files) = export(root, rev)?;
            println!("tree of {rev} (exported to {})", dir.display());
            count(&dir, &files)
        }
        _ => Err("usage: cargo xtask counts [--at REV]".to_string()),
    }
}

/// Prints the counts for `files` (relative to `root`).
fn count(root: &Path, files: &[String]) -> Result<(), String> {
    let mut unsafe_by_folder: BTreeMap<String, usize> = BTreeMap::new();
    let mut sizes: Vec<(usize, String)> = Vec::new();
    let mut functions: Vec<(usize, String)> = Vec::new();
    let mut unparsed = Vec::new();
    for rel in files {
        let Ok(text) = std::fs::read_to_string(root.join(rel)) else {
            unparsed.push(rel.clone());
            continue;
        };
        sizes.push((text.lines().count(), rel.clone()));
        match text.parse::<TokenStream>() {
            Ok(tokens) => {
                let n = unsafe_blocks(tokens);
                *unsafe_by_folder.entry(folder(rel)).or_default() += n;
            }
            Err(_) => unparsed.push(rel.clone()),
        }
        // UI fixtures may be deliberately malformed: a file syn cannot parse
        // still counts for size and unsafe, not for functions.
        if let Ok(file) = syn::parse_file(&text) {
            let mut v = Functions {
                file: rel,
                owner: Vec::new(),
                out: &mut functions,
            };
            v.visit_file(&file);
        }
    }
    println!("unsafe blocks per folder ({} .rs files):", files.len());
    let mut total = 0;
    for (folder, n) in &unsafe_by_folder {
        if *n > 0 {
            println!("  {n:5}  {folder}");
        }
        total += n;
    }
    let examples: usize = unsafe_by_folder
        .iter()
        .filter(|(f, _)| f.starts_with("examples/"))
        .map(|(_, n)| n)
        .sum();
    println!("  {examples:5}  examples/ (all)");
    println!("  {total:5}  total");
    println!();
    println!("duplicates: {}", duplicates(root));
    println!();
    sizes.sort_by(|a, b| b.cmp(a));
    println!("largest files (lines):");
    for (n, f) in sizes.iter().take(TOP) {
        println!("  {n:5}  {f}");
    }
    println!();
    functions.sort_by(|a, b| b.cmp(a));
    println!("largest functions (lines):");
    for (n, f) in functions.iter().take(TOP) {
        println!("  {n:5}  {f}");
    }
    if !unparsed.is_empty() {
        println!();
        println!("not lexed: {}", unparsed.join(", "));
    }
    Ok(())
}

/// Exports the tree of commit `rev` into `$TMPDIR/paranoid-counts-<rev>/`
/// (emptied first) and lists its `.rs` files.
fn export(root: &Path, rev: &str) -> Result<(PathBuf, Vec<String>), String> {
    if rev.is_empty()
        || !rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/~^".contains(c))
    {
        return Err(format!("`{rev}` is not a revision name this command takes"));
    }
    let listing = Command::new("git")
        .current_dir(root)
        .args(["ls-tree", "-r", "-z", "--name-only", rev])
        .output()
        .map_err(|e| format!("cannot run git ls-tree: {e}"))?;
    if !listing.status.success() {
        return Err(format!(
            "git ls-tree {rev} failed: {}",
            String::from_utf8_lossy(&listing.stderr).trim()
        ));
    }
    let files = String::from_utf8_lossy(&listing.stdout)
        .split('\0')
        .filter(|s| s.ends_with(".rs"))
        .map(str::to_string)
        .collect();
    // Outside the checkout: inside it, git (and so `duplicates`) would see
    // the export as ignored files.
    let dir = std::env::temp_dir().join(format!("paranoid-counts-{}", rev.replace('/', "_")));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut archive = Command::new("git")
        .current_dir(root)
        .args(["archive", "--format=tar", rev])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run git archive: {e}"))?;
    let tar = archive
        .stdout
        .take()
        .ok_or("git archive gave no output pipe")?;
    let untar = Command::new("tar")
        .current_dir(&dir)
        .args(["-x", "-f", "-"])
        .stdin(tar)
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let archived = archive
        .wait()
        .map_err(|e| format!("git archive did not finish: {e}"))?;
    if !archived.success() || !untar.success() {
        return Err(format!(
            "exporting {rev} failed (git archive: {archived}, tar: {untar})"
        ));
    }
    Ok((dir, files))
}

/// The `.rs` files git tracks, relative to `root`.
fn tracked_rust_files(root: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-z", "--", "*.rs"])
        .output()
        .map_err(|e| format!("cannot run git ls-files: {e}"))?;
    if !out.status.success() {
        return Err(format!("git ls-files failed: {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// The folder a file counts under: the top-level folder, `examples/<crate>`,
/// or `examples/kernels/<crate>`.
fn folder(rel: &str) -> String {
    let parts: Vec<&str> = rel.split('/').collect();
    let depth = match parts.as_slice() {
        ["examples", "kernels", _, _, ..] => 3,
        ["examples", _, _, ..] => 2,
        [_, _, ..] => 1,
        _ => 0,
    };
    if depth == 0 {
        "(root)".to_string()
    } else {
        parts[..depth].join("/")
    }
}

/// `unsafe` followed by a brace group, at any depth.
fn unsafe_blocks(tokens: TokenStream) -> usize {
    let mut n = 0;
    let mut after_unsafe = false;
    for tt in tokens {
        match tt {
            TokenTree::Group(g) => {
                if after_unsafe && g.delimiter() == Delimiter::Brace {
                    n += 1;
                }
                n += unsafe_blocks(g.stream());
                after_unsafe = false;
            }
            TokenTree::Ident(i) => after_unsafe = i == "unsafe",
            _ => after_unsafe = false,
        }
    }
    n
}

/// The `duplicates` summary line, or why there is none.
fn duplicates(root: &Path) -> String {
    let out = Command::new("duplicates")
        .current_dir(root)
        .args(["--most", "1", "--seconds", "120"])
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("(no output)")
            .to_string(),
        Err(e) => format!("(not run: {e}; the `duplicates` command is not on PATH)"),
    }
}

/// Collects `(lines, file: owner::name)` for every function with a body.
struct Functions<'a> {
    file: &'a str,
    owner: Vec<String>,
    out: &'a mut Vec<(usize, String)>,
}

impl Functions<'_> {
    fn record(&mut self, name: &syn::Ident, span: proc_macro2::Span) {
        let lines = span.end().line.saturating_sub(span.start().line) + 1;
        let mut path = self.owner.clone();
        path.push(name.to_string());
        self.out.push((
            lines,
            format!("{}:{} {}", self.file, span.start().line, path.join("::")),
        ));
    }
}

impl<'ast> Visit<'ast> for Functions<'_> {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.record(&f.sig.ident, f.span());
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.record(&f.sig.ident, f.span());
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if f.default.is_some() {
            self.record(&f.sig.ident, f.span());
        }
        syn::visit::visit_trait_item_fn(self, f);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let name = match &*i.self_ty {
            syn::Type::Path(p) => p
                .path
                .segments
                .last()
                .map_or_else(|| "impl".to_string(), |s| s.ident.to_string()),
            _ => "impl".to_string(),
        };
        self.owner.push(name);
        syn::visit::visit_item_impl(self, i);
        self.owner.pop();
    }

    fn visit_item_trait(&mut self, t: &'ast syn::ItemTrait) {
        self.owner.push(t.ident.to_string());
        syn::visit::visit_item_trait(self, t);
        self.owner.pop();
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.owner.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.owner.pop();
    }
}
