//! The JSON report (`--format json`), documented in `docs/json-report.md`.

use super::Report;

/// Write the report as pretty JSON followed by a newline.
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::other)?;
    writeln!(out)
}
