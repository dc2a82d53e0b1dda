//! Running the `canary` binary in tests, isolated from the user's cache and Docker config.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Canary {
    pub home: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Canary {
    pub fn new() -> Self {
        Canary {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.home.path().join("cache")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_canary"));
        c.env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CANARY_CACHE_DIR", self.cache_dir())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(self.command().args(args))
    }

    pub fn run_with(&self, c: &mut Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = c.output().expect("run canary");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// `canary scan --format json ARGS…`.
    pub fn scan_json(&self, target: &str, extra: &[&str]) -> Run {
        let mut args = vec!["scan", "--format", "json", target];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Rule ids of all findings of all images.
pub fn rule_ids(report: &serde_json::Value) -> Vec<String> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["findings"].as_array().unwrap().iter())
        .map(|f| f["rule_id"].as_str().unwrap().to_string())
        .collect()
}
