//! The JSON report (`--format json`), documented in `docs/json-report.md`.

use super::Report;

/// Write the report as pretty JSON followed by a newline.
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(json_io_error)?;
    writeln!(out)
}

/// A serde_json error as an I/O error that keeps the kind (a closed pipe stays
/// `BrokenPipe`).
pub(crate) fn json_io_error(e: serde_json::Error) -> std::io::Error {
    match e.io_error_kind() {
        Some(kind) => std::io::Error::from(kind),
        None => std::io::Error::other(e),
    }
}
