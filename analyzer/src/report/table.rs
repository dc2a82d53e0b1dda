//! The human table (`--format table`).

use std::io::Write;

use super::{Report, printable as p};
use crate::finding::Severity;

/// Write the report as text; `color` adds ANSI colours to severities.
pub fn write(report: &Report, out: &mut dyn Write, color: bool) -> std::io::Result<()> {
    for img in &report.images {
        write!(out, "{}", p(&img.name))?;
        if let Some(pl) = &img.platform {
            write!(out, " ({})", p(pl))?;
        }
        writeln!(out)?;
        if let Some(d) = &img.manifest_digest {
            writeln!(out, "  manifest {d}")?;
        }
        let entries: u64 = img.layers.iter().map(|l| l.entries).sum();
        let bytes: u64 = img.layers.iter().map(|l| l.uncompressed_bytes).sum();
        if let Some(c) = report
            .charts
            .iter()
            .find(|c| img.name == format!("chart {}", c.name))
        {
            writeln!(
                out,
                "  chart {} {}, {} rendered manifests, {} image references",
                p(&c.name),
                p(&c.version),
                c.manifests,
                c.images.len()
            )?;
            for i in &c.images {
                let scanned = match &i.scan {
                    None => String::new(),
                    Some(s) => match (&s.error, s.max_severity) {
                        (Some(_), _) => " (not scanned)".into(),
                        (None, Some(sev)) => {
                            format!(" ({} findings, worst {})", s.findings, sev.as_str())
                        }
                        (None, None) => " (no findings)".into(),
                    },
                };
                writeln!(
                    out,
                    "    {} {}: {}{scanned}",
                    p(&i.object),
                    p(&i.container),
                    p(&i.image)
                )?;
            }
        } else {
            writeln!(
                out,
                "  {} layers, {} entries, {} uncompressed",
                img.layers.len(),
                entries,
                human_bytes(bytes)
            )?;
        }
        if img.findings.is_empty() {
            writeln!(out, "  no findings")?;
        }
        for f in &img.findings {
            let sev = format!("{:<8}", f.severity.as_str().to_uppercase());
            let sev = if color { paint(f.severity, &sev) } else { sev };
            writeln!(out, "  {sev} {:<32} {}", f.rule_id, p(&f.title))?;
            writeln!(out, "           at {}", p(&f.location.display()))?;
            if !f.evidence.is_empty() {
                writeln!(out, "           evidence: {}", p(&f.evidence))?;
            }
            writeln!(out, "           fingerprint: {}", f.fingerprint)?;
        }
        for s in &img.suppressed {
            writeln!(
                out,
                "  ignored  {:<32} {} ({})",
                s.finding.rule_id,
                p(&s.finding.location.display()),
                p(&s.reason)
            )?;
        }
        writeln!(out)?;
    }
    let s = &report.summary;
    writeln!(
        out,
        "Findings: {} critical, {} high, {} medium, {} low, {} info ({} ignored)",
        s.critical, s.high, s.medium, s.low, s.info, s.suppressed
    )?;
    for e in &report.coverage.errors {
        writeln!(out, "ERROR: {e}")?;
    }
    for w in &report.coverage.warnings {
        writeln!(out, "warning: {w}")?;
    }
    if !report.coverage.skipped.is_empty() {
        let parts: Vec<String> = report
            .coverage
            .skipped
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(out, "Not fully scanned (limits): {}", parts.join(", "))?;
    }
    let verdict = if !report.coverage.complete {
        "INCOMPLETE: the scan did not cover the whole image".to_string()
    } else if report.policy.passed {
        format!("PASSED: no finding at or above {}", report.policy.fail_on)
    } else {
        format!(
            "FAILED: {} finding(s) at or above {}",
            report.policy.failing, report.policy.fail_on
        )
    };
    writeln!(out, "{verdict}")
}

fn paint(s: Severity, text: &str) -> String {
    let code = match s {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
