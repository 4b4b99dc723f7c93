//! Differential tests: every script in tests/lua/ must print exactly what
//! PUC Lua 5.4 (Debian's lua5.4, the reference implementation) prints.
//! Add a script here for each library function made to match Lua.

use std::path::Path;
use std::process::Command;

fn stdout_of(program: &str, args: &[&Path]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e} (scripts/install-deps installs lua5.4)"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn scripts_print_what_puc_lua_prints() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no scripts in {}", dir.display());
    for script in &scripts {
        let expected = stdout_of("lua5.4", &[script]);
        let ours = stdout_of(
            env!("CARGO_BIN_EXE_collectd-monitor"),
            &[Path::new("lua"), script],
        );
        assert_eq!(
            ours,
            expected,
            "{} differs from PUC Lua 5.4",
            script.display()
        );
    }
}
