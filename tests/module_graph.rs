//! The architecture as a test: the top-level modules of `src/` (one per
//! concern) may depend on each other only one way. Reads every source file,
//! collects its `crate::<module>` references (comments left out), and
//! fails on any cycle between top-level modules, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/remote/session.rs` ->
/// `remote`, `src/task.rs` -> `task`); `None` for the crate root and the
/// binary, which may use anything.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "bin").then_some(name)
}

/// Code without `//` comments (doc comments included).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal ("http://...") is rare in
            // paths; good enough for module names.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules named by `crate::x` paths and `use crate::{x, y::z}` groups.
fn references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let preceded = code[..i].chars().last();
        if preceded.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `mycrate::`, not `crate::`
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: split at commas outside braces.
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.insert(ident(group[start..j].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(group[start..j].trim()));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// A cycle in `graph`, as the path of modules that closes it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for target in references(&code(&text)) {
            if target != module {
                edges.insert(target);
            }
        }
    }
    graph
}

#[test]
fn top_level_modules_depend_on_each_other_one_way() {
    let graph = module_graph();
    // The reader must see the edges it checks.
    assert!(graph["remote"].contains("mqtt"), "{graph:?}");
    assert!(graph["plugin"].contains("collectd"), "{graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "module cycle: {}\nall edges: {graph:#?}",
            cycle.join(" -> ")
        );
    }
}

/// The module table of docs/ARCHITECTURE.md: each module with the modules
/// its "uses" column names, in the table's order.
fn documented_modules() -> Vec<(String, BTreeSet<String>)> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
            .unwrap();
    let section = doc.split("## Modules").nth(1).expect("a Modules section");
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let name = cells[0]
                .trim_matches('`')
                .trim_end_matches('/')
                .trim_end_matches(".rs")
                .to_string();
            let uses = cells
                .last()
                .unwrap()
                .split(',')
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty() && u != "—" && u != "everything below")
                .collect();
            (name, uses)
        })
        .collect()
}

/// docs/ARCHITECTURE.md matches the tree: every top-level module is in its
/// table, each row's "uses" is what the code uses (the wiring in
/// `plugin.rs` may use anything below it), and every dependency points
/// down the table.
#[test]
fn the_architecture_document_matches_the_code() {
    let graph = module_graph();
    let documented = documented_modules();
    let order: Vec<&str> = documented.iter().map(|(n, _)| n.as_str()).collect();
    for module in graph.keys() {
        assert!(
            order.contains(&module.as_str()),
            "docs/ARCHITECTURE.md lacks module `{module}`"
        );
    }
    for (name, uses) in &documented {
        let actual = graph.get(name).cloned().unwrap_or_default();
        if name != "plugin" {
            assert_eq!(uses, &actual, "docs/ARCHITECTURE.md: what `{name}` uses");
        }
        let at = order.iter().position(|n| n == name).unwrap();
        for target in &actual {
            let below = order.iter().position(|n| n == target);
            assert!(
                below.is_some_and(|b| b > at),
                "`{name}` uses `{target}`, which is not below it in docs/ARCHITECTURE.md"
            );
        }
    }
}

#[test]
fn the_reader_finds_cycles_and_grouped_imports() {
    let refs = references(&code(
        "use crate::{a, b::{c, d}, e::f};\nlet x = crate::g::h(); // crate::comment\nmycrate::i",
    ));
    assert_eq!(
        refs,
        ["a", "b", "e", "g"].map(String::from).into_iter().collect()
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(["a", "b", "c", "a"].map(String::from).to_vec())
    );
}

/// Every result code of `task::CODES` is documented in a code table of
/// `docs/` (`remote.md` for commands and configs, `fleet.md` for rule
/// pushes), so a new code cannot ship unexplained.
#[test]
fn every_result_code_is_documented() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let readme: String = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let missing: Vec<String> = collectd_monitor::task::CODES
        .iter()
        .map(|(value, _)| format!("0x{value:X}"))
        .filter(|hex| {
            !readme.contains(&format!("`{hex}`")) && !readme.contains(&format!("| {hex}"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/remote.md lacks result codes {missing:?}"
    );
}
