//! The library's layering, checked from the source text: each top-level module may use only the
//! modules of lower layers (DESIGN.md: run > eval, bench > train > model > data > graph >
//! backend), and within a module no two files use each other, directly or round a cycle
//! (`mod.rs`, which declares and re-exports its files, is left out of that check).
//!
//! A use is any `crate::name` or `super::name` path outside comments; the test needs no build
//! tooling, so it runs everywhere the tests do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of every top-level module of src/lib.rs; a module may use strictly lower layers.
const LAYERS: &[(&str, u32)] = &[
    ("error", 0),
    ("rng", 1),
    ("fsutil", 1),
    ("testdir", 1), // unit tests' temp folders (cfg(test) only)
    ("backend", 2),
    ("graph", 3),
    ("data", 4),
    ("model", 5),
    ("train", 6),
    ("eval", 7),
    ("bench", 7),
    ("run", 8),
];

fn layer(m: &str) -> u32 {
    LAYERS.iter().find(|(n, _)| *n == m).unwrap_or_else(|| panic!("module '{m}' has no layer in tests/layers.rs: add it")).1
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments (line comments, doc comments and block comments).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in text.lines() {
        let mut l = line;
        if in_block {
            match l.find("*/") {
                Some(i) => {
                    l = &l[i + 2..];
                    in_block = false;
                }
                None => continue,
            }
        }
        if let Some(i) = l.find("/*") {
            in_block = !l[i..].contains("*/");
            l = &l[..i];
        }
        // `//` outside a string literal (good enough for this code base: URLs sit in comments)
        let cut = l.find("//").filter(|&i| l[..i].matches('"').count() % 2 == 0).unwrap_or(l.len());
        out += &l[..cut];
        out += "\n";
    }
    out
}

/// Names following `prefix::` in `code` (e.g. "crate" -> the top-level modules used).
fn paths_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let pat = format!("{prefix}::");
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices(&pat) {
        let before = code[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `my_crate::`
        }
        let rest = &code[i + pat.len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    // `use crate::{a, b::c}`
    for (i, _) in code.match_indices(&format!("{pat}{{")) {
        let rest = &code[i + pat.len() + 1..];
        let inner = &rest[..rest.find('}').unwrap_or(0)];
        for part in inner.split(',') {
            let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn top_level_modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for m in LAYERS.iter().map(|(m, _)| *m) {
        let dir = src.join(m);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else if src.join(format!("{m}.rs")).exists() {
            files.push(src.join(format!("{m}.rs")));
        }
    }
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for used in paths_after(&code, "crate") {
            if used == top || matches!(used.as_str(), "Result" | "Error" | "Backend" | "BufferLike" | "DType" | "Kernels" | "Op") {
                // the crate root's re-exports of error and backend items
                if used != top
                    && matches!(used.as_str(), "Backend" | "BufferLike" | "DType" | "Kernels" | "Op")
                    && layer(&top) < layer("backend")
                {
                    wrong.push(format!("{}: uses crate::{used} (backend) from layer {}", rel.display(), layer(&top)));
                }
                continue;
            }
            if layer(&used) >= layer(&top) {
                wrong.push(format!("{} ({top}, layer {}) uses crate::{used} (layer {})", rel.display(), layer(&top), layer(&used)));
            }
        }
    }
    assert!(wrong.is_empty(), "uses that point up or sideways:\n{}", wrong.join("\n"));
}

#[test]
fn files_within_a_module_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![src.clone()];
    let mut cycles = Vec::new();
    while let Some(dir) = dirs.pop() {
        // siblings: the .rs files and sub-folders of `dir`, except mod.rs / lib.rs / main.rs
        let mut siblings: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
            if p.is_dir() {
                dirs.push(p.clone());
                let mut fs = Vec::new();
                rust_files(&p, &mut fs);
                siblings.entry(name).or_default().extend(fs);
            } else if p.extension().is_some_and(|x| x == "rs") && !["mod", "lib", "main"].contains(&name.as_str()) {
                siblings.entry(name).or_default().push(p);
            }
        }
        let in_src_root = dir == src;
        let names: BTreeSet<String> = siblings.keys().cloned().collect();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, files) in &siblings {
            for f in files {
                let code = code_of(&std::fs::read_to_string(f).unwrap());
                // a sibling is reached by `super::x` from a file directly in `dir`, or by
                // `crate::x` (root) / `crate::<dir>::x`
                let direct = f.parent() == Some(dir.as_path()) && f.file_name().is_some_and(|n| n != "mod.rs");
                let mut used = BTreeSet::new();
                if direct {
                    used.extend(paths_after(&code, "super"));
                }
                if in_src_root {
                    used.extend(paths_after(&code, "crate"));
                } else if let Ok(rel) = dir.strip_prefix(&src) {
                    let module = rel.to_string_lossy().replace('/', "::");
                    used.extend(paths_after(&code, &format!("crate::{module}")));
                }
                for u in used {
                    if names.contains(&u) && &u != name {
                        edges.entry(name.clone()).or_default().insert(u);
                    }
                }
            }
        }
        // depth-first search for a cycle
        fn visit(
            n: &str,
            edges: &BTreeMap<String, BTreeSet<String>>,
            stack: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(i) = stack.iter().position(|s| s == n) {
                let mut c = stack[i..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            if done.contains(n) {
                return None;
            }
            stack.push(n.to_string());
            for m in edges.get(n).into_iter().flatten() {
                if let Some(c) = visit(m, edges, stack, done) {
                    return Some(c);
                }
            }
            stack.pop();
            done.insert(n.to_string());
            None
        }
        let mut done = BTreeSet::new();
        for n in &names {
            if let Some(c) = visit(n, &edges, &mut Vec::new(), &mut done) {
                cycles.push(format!("{}: {}", dir.strip_prefix(&src).unwrap_or(&dir).display(), c.join(" -> ")));
                break;
            }
        }
    }
    assert!(cycles.is_empty(), "files that use each other:\n{}", cycles.join("\n"));
}
