//! The node's module graph (issue 13): drivers depend on `proto` and on shared
//! services, never on each other in a circle. This reads `crates/node/src` and
//! builds the graph of its top-level modules from every `crate::…` path (a
//! `crate::{a, b::C}` group counts each item; a name `lib.rs` re-exports counts as the
//! module it comes from). `lib.rs` itself — `Inner` and start-up, which wire
//! everything — is the root and not a node of the graph.
//!
//! The graph is printed (`cargo nextest run -p communitas-node modules --no-capture`);
//! docs/architecture.md ("Modules") shows the same picture.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file of module `name`: `name.rs` and everything under `name/`.
fn files_of(src: &Path, name: &str) -> Vec<PathBuf> {
    let mut files = vec![src.join(format!("{name}.rs"))];
    let mut dirs = vec![src.join(name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The source without `//` comments (doc comments name modules in prose).
fn code(source: &str) -> String {
    source.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The first segment of every path after `crate::`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // A `use crate::{a, b::{C, D}, E}` group: the first segment of each item.
            let (mut depth, mut item_start, mut end) = (1, 0, group.len());
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => {
                        end = i;
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        found.insert(ident(group[item_start..i].trim()).to_owned());
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            found.insert(ident(group[item_start..end].trim()).to_owned());
        } else {
            found.insert(ident(rest).to_owned());
        }
    }
    found.remove("");
    found
}

/// Names `lib.rs` re-exports, and the module each comes from.
fn reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in code(lib).lines() {
        let line = line.trim();
        let Some(path) =
            line.strip_prefix("pub use ").or_else(|| line.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let module = ident(path);
        if !modules.contains(module) {
            continue;
        }
        let names = path[module.len()..].trim_start_matches("::").trim_end_matches(';');
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.split(" as ").last().unwrap_or("").trim();
            if !name.is_empty() {
                map.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    map
}

fn graph() -> Graph {
    let src = src();
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".rs").filter(|m| *m != "lib").map(str::to_owned)
        })
        .collect();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let aliases = reexports(&lib, &modules);
    let mut graph = Graph::new();
    for module in &modules {
        let mut deps = BTreeSet::new();
        for file in files_of(&src, module) {
            let source = std::fs::read_to_string(&file).unwrap();
            for name in crate_paths(&code(&source)) {
                let target = if modules.contains(&name) { Some(&name) } else { aliases.get(&name) };
                if let Some(target) = target.filter(|t| *t != module) {
                    deps.insert(target.clone());
                }
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// A circle through `from`, if any: the path back to it.
fn circle(graph: &Graph, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in &graph[last] {
            if next == from {
                let mut circle = path.clone();
                circle.push(next.clone());
                return Some(circle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn the_node_modules_form_no_circle() {
    let graph = graph();
    for (module, deps) in &graph {
        let deps: Vec<_> = deps.iter().map(String::as_str).collect();
        println!("{module} → {}", deps.join(", "));
    }
    // The scan sees what it must: the drivers and their services.
    for (module, dep) in [("inbound", "receipts"), ("mailbox", "inbound"), ("dispatch", "inbound")]
    {
        assert!(graph[module].contains(dep), "{module} should depend on {dep}: {graph:?}");
    }
    for module in graph.keys() {
        if let Some(circle) = circle(&graph, module) {
            panic!("an import circle: {}", circle.join(" → "));
        }
    }
    // The circles issue 13 named, each cut at the place it was cut.
    for (module, dep) in [
        ("receipts", "files"),
        ("receipts", "outbox"),
        ("inbound", "presence"),
        ("inbound", "mailbox"),
        ("inbound", "outbox"),
        ("presence", "inbound"),
        ("event", "files"),
    ] {
        assert!(!graph[module].contains(dep), "{module} depends on {dep} again");
    }
    // Dispatch is the top: no module names it.
    assert!(graph.values().all(|deps| !deps.contains("dispatch")));
}

#[test]
fn the_scan_reads_groups_and_skips_comments() {
    let code = code("use crate::{a, b::{C, d}, e as f};\n// crate::g\nlet x = crate::h::i();");
    let found: Vec<_> = crate_paths(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "e", "h"]);
    let modules = ["event", "files"].map(str::to_owned).into();
    let aliases = reexports("pub use event::{Attachment, Event};\npub use files::X;", &modules);
    assert_eq!(aliases["Attachment"], "event");
    assert_eq!(aliases["X"], "files");
}
