//! Static test programs run inside the sandbox, built with gcc once per test binary:
//! the probe (tests/sandbox/probe.c, whose argument picks what it tries) and a miner
//! that hides its strings (tests/sandbox/quiet.c).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn build(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("canary-sandbox-probe");
    std::fs::create_dir_all(&dir).unwrap();
    // Built under a name of its own, then renamed: test binaries build it at once.
    let tmp = dir.join(format!("{name}.{}", std::process::id()));
    let out = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/sandbox/{name}.c"));
    let st = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&tmp)
        .arg(&src)
        .status()
        .expect("gcc (scripts/test.sh installs it)");
    assert!(st.success(), "gcc failed on {}", src.display());
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// The probe.
pub fn probe() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build("probe"))
}

/// The quiet miner.
pub fn quiet() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build("quiet"))
}
