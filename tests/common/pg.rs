//! The machine's PostgreSQL (127.0.0.1:5432, trust auth), through Debian's `psql`.

use std::process::Command;

/// Run `sql` on database `db`; its rows, `|`-separated, one a line.
pub fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            db,
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql (Debian postgresql-client; bash scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fresh, empty database `name`; its URL.
pub fn fresh_database(name: &str) -> String {
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    psql("postgres", &format!("CREATE DATABASE {name}"));
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}
