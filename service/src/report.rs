//! `canary report`: figures over everything the store holds, as Markdown, a
//! self-contained HTML page with charts, or every finding for researchers as CSV or
//! Parquet.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::scanner::unpack;
use crate::store::Store;

/// The figures of a report.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    /// Platform images with a verdict.
    pub images: u64,
    pub images_denied: u64,
    /// Images with at least one finding of the category.
    pub by_category: BTreeMap<String, u64>,
    /// Images per miner family.
    pub miner_families: BTreeMap<String, u64>,
    /// Images per mining pool host seen in findings.
    pub pools: BTreeMap<String, u64>,
    /// Images per wallet address seen in findings (wallets are public identifiers).
    pub wallets: BTreeMap<String, u64>,
    /// Images per secret rule.
    pub secret_types: BTreeMap<String, u64>,
    /// Images whose miner/secret findings are all in files a later layer deleted or replaced.
    pub only_in_deleted_files: u64,
    /// Images with a miner/secret finding at all.
    pub with_miner_or_secret: u64,
    /// Images whose only high or critical findings came from running them.
    pub runtime_only: u64,
    /// Layers recorded, and layers walked (one result per rules digest).
    pub layers_seen: i64,
    pub layer_results: i64,
    /// Walks that produced the layer results (above `layer_results` when two processes
    /// met a new layer at the same time).
    pub layer_walks: i64,
    /// `(minute, done, failed)` of the jobs.
    pub throughput: Vec<(i64, i64, i64)>,
    /// Every finding, for CSV.
    #[serde(skip)]
    pub rows: Vec<Row>,
}

/// One finding, flattened.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub image: String,
    pub manifest_digest: String,
    pub rule_id: String,
    pub category: String,
    pub severity: String,
    pub confidence: String,
    pub location: String,
    pub visibility: String,
    pub fingerprint: String,
    pub evidence: String,
    /// `image_file`, `image_config` or `runtime`.
    pub location_kind: String,
    /// For a finding in a layer: the layer's digest and the file's path (empty otherwise).
    pub layer_digest: String,
    pub path: String,
}

/// The columns of the CSV and Parquet exports, in order.
const COLUMNS: [&str; 13] = [
    "image",
    "manifest_digest",
    "rule_id",
    "category",
    "severity",
    "confidence",
    "location",
    "visibility",
    "fingerprint",
    "evidence",
    "location_kind",
    "layer_digest",
    "path",
];

impl Row {
    fn columns(&self) -> [&str; 13] {
        [
            &self.image,
            &self.manifest_digest,
            &self.rule_id,
            &self.category,
            &self.severity,
            &self.confidence,
            &self.location,
            &self.visibility,
            &self.fingerprint,
            &self.evidence,
            &self.location_kind,
            &self.layer_digest,
            &self.path,
        ]
    }
}

/// The family a miner finding names: `Crypto-miner: xmrig` or `… crypto-miner (xmrig)`;
/// none for findings that name no family (a pool URL, a wallet).
fn family(f: &Value) -> Option<String> {
    let title = f["title"].as_str().unwrap_or("");
    if let Some(x) = title.split("Crypto-miner: ").nth(1) {
        return Some(x.trim().to_ascii_lowercase());
    }
    if let Some(x) = title.split("crypto-miner (").nth(1) {
        return Some(x.trim_end_matches(')').trim().to_ascii_lowercase());
    }
    None
}

fn pool_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?i)stratum2?\+(?:tcp|ssl|tls)://([a-z0-9.-]+\.[a-z]{2,})")
            .expect("static pattern")
    })
}

fn location_text(loc: &Value) -> String {
    match loc["kind"].as_str() {
        Some("image_file") => {
            let mut s = loc["path"].as_str().unwrap_or("").to_string();
            if let Some(chain) = loc["archive_chain"].as_array().filter(|c| !c.is_empty()) {
                let outer: Vec<&str> = chain.iter().filter_map(Value::as_str).collect();
                s = format!("{} → {s}", outer.join(" → "));
            }
            if let Some(l) = loc["line"].as_u64() {
                s = format!("{s}:{l}");
            }
            format!("layer {} {s}", loc["layer_index"])
        }
        Some("image_config") => loc["field"].as_str().unwrap_or("").to_string(),
        Some("runtime") => format!("runtime: {}", loc["event"].as_str().unwrap_or("")),
        _ => loc.to_string(),
    }
}

/// Read every verdict's report and count.
pub async fn figures(store: &Store) -> Result<Figures> {
    let mut f = Figures::default();
    let mut after = String::new();
    loop {
        let batch = store.verdict_reports(&after, 200).await?;
        let Some(last) = batch.last() else { break };
        after = last.0.clone();
        for (manifest, image, _rules, bytes) in batch {
            let report: Value = match unpack(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("canary report: stored report of {manifest} unreadable: {e}");
                    continue;
                }
            };
            f.images += 1;
            if !report["policy"]["passed"].as_bool().unwrap_or(false)
                || !report["coverage"]["complete"].as_bool().unwrap_or(true)
            {
                f.images_denied += 1;
            }
            let findings: Vec<&Value> = report["images"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|i| i["findings"].as_array().into_iter().flatten())
                .collect();
            let mut cats = HashSet::new();
            let mut fams = HashSet::new();
            let mut pools = HashSet::new();
            let mut wallets = HashSet::new();
            let mut secrets = HashSet::new();
            let (mut ms_total, mut ms_deleted) = (0, 0);
            let (mut static_bad, mut runtime_bad) = (false, false);
            for x in &findings {
                let cat = x["category"].as_str().unwrap_or("?").to_string();
                let rule = x["rule_id"].as_str().unwrap_or("?").to_string();
                let evidence = x["evidence"].as_str().unwrap_or("");
                let runtime = x["location"]["kind"] == "runtime";
                // Serious: high or critical. Runtime findings carry the `runtime` category
                // whatever they saw (a pool, a stolen credential, a dropped miner).
                if matches!(x["severity"].as_str(), Some("critical" | "high")) {
                    if runtime {
                        runtime_bad = true;
                    } else {
                        static_bad = true;
                    }
                }
                if cat == "miner" {
                    if let Some(fam) = family(x) {
                        fams.insert(fam);
                    }
                    for c in pool_re().captures_iter(evidence) {
                        pools.insert(c[1].to_ascii_lowercase());
                    }
                    // The wallet rules' evidence is the address (a public identifier).
                    if rule.contains("wallet")
                        && let Some(w) = evidence.split_whitespace().find(|w| w.len() >= 26)
                    {
                        wallets.insert(
                            w.trim_matches(|c: char| !c.is_ascii_alphanumeric())
                                .to_string(),
                        );
                    }
                }
                if cat == "secret" {
                    secrets.insert(rule.clone());
                }
                if (cat == "miner" || cat == "secret") && !runtime {
                    ms_total += 1;
                    if matches!(
                        x["location"]["visibility"].as_str(),
                        Some("deleted" | "replaced")
                    ) {
                        ms_deleted += 1;
                    }
                }
                cats.insert(cat.clone());
                f.rows.push(Row {
                    image: image.clone(),
                    manifest_digest: manifest.clone(),
                    rule_id: rule,
                    category: cat,
                    severity: x["severity"].as_str().unwrap_or("").into(),
                    confidence: x["confidence"].as_str().unwrap_or("").into(),
                    location: location_text(&x["location"]),
                    visibility: x["location"]["visibility"].as_str().unwrap_or("").into(),
                    fingerprint: x["fingerprint"].as_str().unwrap_or("").into(),
                    evidence: evidence.into(),
                    location_kind: x["location"]["kind"].as_str().unwrap_or("").into(),
                    layer_digest: x["location"]["layer_digest"].as_str().unwrap_or("").into(),
                    path: x["location"]["path"].as_str().unwrap_or("").into(),
                });
            }
            for (set, map) in [
                (cats, &mut f.by_category),
                (fams, &mut f.miner_families),
                (pools, &mut f.pools),
                (wallets, &mut f.wallets),
                (secrets, &mut f.secret_types),
            ] {
                for k in set {
                    *map.entry(k).or_default() += 1;
                }
            }
            if ms_total > 0 {
                f.with_miner_or_secret += 1;
                if ms_deleted == ms_total {
                    f.only_in_deleted_files += 1;
                }
            }
            if runtime_bad && !static_bad {
                f.runtime_only += 1;
            }
        }
    }
    let (seen, results, walks) = store.layer_counts().await?;
    f.layers_seen = seen;
    f.layer_results = results;
    f.layer_walks = walks;
    f.throughput = store.jobs_per_minute().await?;
    Ok(f)
}

fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(n);
    v
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "0 %".into()
    } else {
        format!("{:.1} %", n as f64 * 100.0 / of as f64)
    }
}

/// Markdown.
pub fn markdown(f: &Figures) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Canary crawl report\n");
    let _ = writeln!(s, "| figure | value |\n|---|---|");
    let _ = writeln!(s, "| images scanned (platform manifests) | {} |", f.images);
    let _ = writeln!(
        s,
        "| images denied by the policy | {} ({}) |",
        f.images_denied,
        pct(f.images_denied, f.images)
    );
    for (cat, n) in &f.by_category {
        let _ = writeln!(
            s,
            "| images with {cat} findings | {n} ({}) |",
            pct(*n, f.images)
        );
    }
    let _ = writeln!(
        s,
        "| images whose miner/secret findings are only in deleted or replaced files | {} of {} ({}) |",
        f.only_in_deleted_files,
        f.with_miner_or_secret,
        pct(f.only_in_deleted_files, f.with_miner_or_secret)
    );
    let _ = writeln!(s, "| images found only at run time | {} |", f.runtime_only);
    let _ = writeln!(
        s,
        "| layers seen / walked (walks) | {} / {} ({}) |",
        f.layers_seen, f.layer_results, f.layer_walks
    );
    for (title, map) in [
        ("Miner families (images)", &f.miner_families),
        ("Mining pools (images)", &f.pools),
        ("Wallets (images)", &f.wallets),
        ("Secret types (images)", &f.secret_types),
    ] {
        let _ = writeln!(s, "\n## {title}\n");
        if map.is_empty() {
            let _ = writeln!(s, "none");
            continue;
        }
        let _ = writeln!(s, "| | images |\n|---|---|");
        for (k, n) in top(map, 20) {
            let _ = writeln!(s, "| `{}` | {n} |", k.replace('|', "\\|"));
        }
    }
    let _ = writeln!(
        s,
        "\n## Throughput\n\n| minute (UTC) | done | failed |\n|---|---|---|"
    );
    for (m, d, x) in &f.throughput {
        let _ = writeln!(s, "| {} | {d} | {x} |", minute(*m));
    }
    s
}

fn minute(m: i64) -> String {
    chrono::DateTime::from_timestamp(m * 60, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// CSV of every finding (RFC 4180 quoting).
pub fn csv(f: &Figures) -> String {
    fn q(s: &str) -> String {
        // A leading = + - @ would be a formula in a spreadsheet: neutralise it.
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    }
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for r in &f.rows {
        let line: Vec<String> = r.columns().iter().map(|c| q(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// Rows per Parquet row group: large enough for good compression, small enough that a
/// reader can stream the file.
const PARQUET_ROW_GROUP: usize = 65_536;

/// Every finding as a Parquet file: one UTF-8 string column per CSV column (empty
/// where a finding has no such field), zstd-compressed, in row groups of 64 Ki rows.
pub fn parquet(f: &Figures) -> Result<Vec<u8>> {
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;

    let mut schema = String::from("message finding {\n");
    for c in COLUMNS {
        let _ = writeln!(schema, "  REQUIRED BYTE_ARRAY {c} (STRING);");
    }
    schema.push('}');
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&schema)?);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!("canary {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut w = SerializedFileWriter::new(Vec::new(), schema, Arc::new(props))?;
    for chunk in f.rows.chunks(PARQUET_ROW_GROUP) {
        let mut group = w.next_row_group()?;
        let mut i = 0;
        while let Some(mut col) = group.next_column()? {
            let values: Vec<ByteArray> = chunk
                .iter()
                .map(|r| ByteArray::from(r.columns()[i].as_bytes().to_vec()))
                .collect();
            col.typed::<ByteArrayType>()
                .write_batch(&values, None, None)?;
            col.close()?;
            i += 1;
        }
        group.close()?;
    }
    Ok(w.into_inner()?)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart as inline SVG.
fn bars(id: &str, rows: &[(&str, u64)]) -> String {
    if rows.is_empty() {
        return format!("<p id=\"{id}\" class=\"none\">none</p>");
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
    let h = 22 * rows.len() + 4;
    let mut s = format!(
        "<svg id=\"{id}\" role=\"img\" width=\"640\" height=\"{h}\" viewBox=\"0 0 640 {h}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, (k, n)) in rows.iter().enumerate() {
        let y = 22 * i + 2;
        let w = (*n as f64 / max as f64 * 380.0).max(1.0);
        let label: String = k.chars().take(40).collect();
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"250\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"#c0392b\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\" class=\"v\" data-key=\"{}\">{n}</text>",
            y + 13,
            esc(&label),
            255.0 + w,
            y + 13,
            esc(k)
        );
    }
    s.push_str("</svg>");
    s
}

/// A self-contained HTML page (no scripts, no external resources).
pub fn html(f: &Figures) -> String {
    let mut s = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Canary crawl report</title>\
         <style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}\
         td.n{text-align:right}h2{margin-top:1.5em}</style></head><body><h1>Canary crawl report</h1>",
    );
    let _ = write!(
        s,
        "<table id=\"figures\"><tr><th>figure</th><th>value</th></tr>"
    );
    let mut row = |id: &str, label: &str, v: String| {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\" id=\"{id}\">{}</td></tr>",
            esc(label),
            esc(&v)
        );
    };
    row(
        "images",
        "images scanned (platform manifests)",
        f.images.to_string(),
    );
    row(
        "images-denied",
        "images denied by the policy",
        f.images_denied.to_string(),
    );
    row(
        "deleted-only",
        "images whose miner/secret findings are only in deleted or replaced files",
        f.only_in_deleted_files.to_string(),
    );
    row(
        "deleted-share",
        "… share of images with miner/secret findings",
        pct(f.only_in_deleted_files, f.with_miner_or_secret),
    );
    row(
        "runtime-only",
        "images found only at run time",
        f.runtime_only.to_string(),
    );
    row("layers-seen", "layers seen", f.layers_seen.to_string());
    row(
        "layers-walked",
        "layers walked",
        f.layer_results.to_string(),
    );
    s.push_str("</table>");
    let cats: Vec<(&str, u64)> = f
        .by_category
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    for (id, title, rows) in [
        ("chart-categories", "Images by finding category", cats),
        (
            "chart-families",
            "Miner families",
            top(&f.miner_families, 15),
        ),
        ("chart-pools", "Top mining pools", top(&f.pools, 15)),
        ("chart-wallets", "Top wallets", top(&f.wallets, 15)),
        (
            "chart-secrets",
            "Top secret types",
            top(&f.secret_types, 15),
        ),
    ] {
        let _ = write!(s, "<h2>{}</h2>{}", esc(title), bars(id, &rows));
    }
    let tp: Vec<(String, u64)> = f
        .throughput
        .iter()
        .map(|(m, d, _)| (minute(*m), *d as u64))
        .collect();
    let tp_rows: Vec<(&str, u64)> = tp.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let _ = write!(
        s,
        "<h2>Crawl throughput (images done per minute)</h2>{}",
        bars("chart-throughput", &tp_rows)
    );
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_pools_come_from_findings() {
        let f =
            serde_json::json!({"title": "Crypto-miner: xmrig", "rule_id": "miner/xmrig-launch"});
        assert_eq!(family(&f).as_deref(), Some("xmrig"));
        let f = serde_json::json!({"title": "config.Entrypoint runs a crypto-miner (xmrig)"});
        assert_eq!(family(&f).as_deref(), Some("xmrig"));
        assert_eq!(
            family(&serde_json::json!({"title": "Stratum mining-pool URL"})),
            None
        );
        let caps: Vec<String> = pool_re()
            .captures_iter("stratum+tcp://Pool.SupportXMR.com:3333 (a known pool)")
            .map(|c| c[1].to_ascii_lowercase())
            .collect();
        assert_eq!(caps, ["pool.supportxmr.com"]);
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let f = Figures {
            rows: vec![Row {
                image: "a\"b".into(),
                manifest_digest: "sha256:x".into(),
                rule_id: "r".into(),
                category: "secret".into(),
                severity: "high".into(),
                confidence: "high".into(),
                location: "=cmd|' /C calc'!A0".into(),
                visibility: "visible".into(),
                fingerprint: "f".into(),
                evidence: "e,1".into(),
                location_kind: "image_file".into(),
                layer_digest: "sha256:l".into(),
                path: "etc/x".into(),
            }],
            ..Default::default()
        };
        let c = csv(&f);
        assert!(c.contains("\"a\"\"b\""), "{c}");
        assert!(c.contains("\"'=cmd|' /C calc'!A0\""), "{c}");
        assert!(c.contains("\"e,1\""), "{c}");
    }

    #[test]
    fn parquet_holds_every_row_across_row_groups() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let rows: Vec<Row> = (0..PARQUET_ROW_GROUP + 3)
            .map(|i| Row {
                image: format!("reg/img:{i}"),
                manifest_digest: format!("sha256:{i:064x}"),
                rule_id: "miner/xmrig".into(),
                category: "miner".into(),
                severity: "critical".into(),
                confidence: "high".into(),
                location: format!("layer 0 usr/bin/x{i}"),
                visibility: if i % 2 == 0 { "visible" } else { "deleted" }.into(),
                fingerprint: format!("fp{i}"),
                evidence: "stratum+tcp://pool.example:3333 «ü»".into(),
                location_kind: "image_file".into(),
                layer_digest: "sha256:aa".into(),
                path: format!("usr/bin/x{i}"),
            })
            .collect();
        let f = Figures {
            rows,
            ..Default::default()
        };
        let bytes = parquet(&f).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 2);
        assert_eq!(meta.file_metadata().num_rows() as usize, f.rows.len());
        let names: Vec<&str> = meta
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.name())
            .collect();
        assert_eq!(names, COLUMNS);
        let mut n = 0;
        for (row, want) in reader.get_row_iter(None).unwrap().zip(&f.rows) {
            let row = row.unwrap();
            let got: Vec<String> = row
                .get_column_iter()
                .map(|(_, v)| match v {
                    parquet::record::Field::Str(s) => s.clone(),
                    other => panic!("not a string: {other:?}"),
                })
                .collect();
            assert_eq!(got, want.columns());
            n += 1;
        }
        assert_eq!(n, f.rows.len());
    }

    #[test]
    fn html_escapes_what_the_images_say() {
        let mut f = Figures::default();
        f.secret_types.insert("<script>alert(1)</script>".into(), 1);
        let h = html(&f);
        assert!(!h.contains("<script>"));
        assert!(h.contains("&lt;script&gt;"));
    }
}
