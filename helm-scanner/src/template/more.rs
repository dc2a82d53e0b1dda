//! The rest of the Sprig and Go built-in functions charts call: type tests, float math,
//! `must*` variants, escaping, more list/string/regex helpers, random strings, and dates
//! (a time is Unix seconds; zones other than UTC are read as UTC).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use serde_json::Value;
use sha2::Digest;

use super::exec::{Func, type_name};
use super::funcs::{float, json_with, list_of, s, sprint, to_f64, to_i64, want};

/// Aliases: Sprig's `must*` functions return an error where the plain ones would panic;
/// both end the render with an error here.
const MUST_ALIASES: [(&str, &str); 24] = [
    ("mustMerge", "merge"),
    ("mustMergeOverwrite", "mergeOverwrite"),
    ("mustAppend", "append"),
    ("mustPush", "append"),
    ("push", "append"),
    ("mustPrepend", "prepend"),
    ("mustFirst", "first"),
    ("mustLast", "last"),
    ("mustRest", "rest"),
    ("mustInitial", "initial"),
    ("mustReverse", "reverse"),
    ("mustUniq", "uniq"),
    ("mustWithout", "without"),
    ("mustHas", "has"),
    ("mustCompact", "compact"),
    ("mustDeepCopy", "deepCopy"),
    ("mustRegexMatch", "regexMatch"),
    ("mustRegexFind", "regexFind"),
    ("mustRegexFindAll", "regexFindAll"),
    ("mustRegexReplaceAll", "regexReplaceAll"),
    ("mustToJson", "toJson"),
    ("mustToPrettyJson", "toPrettyJson"),
    ("trimall", "trimAll"),
    ("mustSlice", "slice"),
];

pub(super) fn random_u64() -> u64 {
    // Values Helm randomizes differ run to run by design; a per-call random hasher
    // state (seeded by the OS) is random enough for them.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

fn random_from(n: i64, alphabet: &[u8]) -> Result<Value, String> {
    if !(0..=1 << 16).contains(&n) {
        return Err(format!("random string length {n} out of range"));
    }
    let mut out = String::with_capacity(n as usize);
    let mut bits = 0u64;
    let mut left = 0;
    while out.len() < n as usize {
        if left == 0 {
            bits = random_u64();
            left = 8;
        }
        let b = (bits & 0xff) as usize;
        bits >>= 8;
        left -= 1;
        // Rejection sampling keeps the choice uniform.
        if b < 256 - 256 % alphabet.len() {
            out.push(alphabet[b % alphabet.len()] as char);
        }
    }
    Ok(Value::String(out))
}

/// A random value, recorded as generated (the scan does not report it as a secret).
fn x_generated(x: &mut super::exec::Exec<'_>, v: Result<Value, String>) -> Result<Value, String> {
    if let Ok(Value::String(t)) = &v {
        x.generated(t);
    }
    v
}

const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A Go reference layout (`2006-01-02T15:04:05Z07:00`) as a chrono format, in UTC.
fn go_layout(layout: &str) -> String {
    const TOKENS: [(&str, &str); 27] = [
        ("January", "%B"),
        ("Monday", "%A"),
        ("Z07:00", "Z"),
        ("-07:00", "+00:00"),
        (".000000000", "%.9f"),
        (".000000", "%.6f"),
        (".999999999", "%.f"),
        ("2006", "%Y"),
        ("-0700", "+0000"),
        (".000", "%.3f"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "UTC"),
        ("Z0700", "Z"),
        ("-07", "+00"),
        ("_2", "%e"),
        ("01", "%m"),
        ("02", "%d"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("15", "%H"),
        ("PM", "%p"),
        ("pm", "%P"),
        ("1", "%-m"),
        ("2", "%-d"),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, ch) in TOKENS {
            if let Some(r) = rest.strip_prefix(go) {
                out.push_str(ch);
                rest = r;
                continue 'outer;
            }
        }
        for (go, ch) in [("3", "%-I"), ("4", "%-M"), ("5", "%-S")] {
            if let Some(r) = rest.strip_prefix(go) {
                out.push_str(ch);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn format_time(layout: &str, t: &Value) -> String {
    let secs = match t {
        Value::Number(_) | Value::String(_) => to_i64(t),
        _ => unix_now(),
    };
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(d) => d.format(&go_layout(layout)).to_string(),
        None => String::new(),
    }
}

/// A Go duration (`1h30m`, `-90s`, `250ms`) in seconds.
fn go_duration(d: &str) -> Option<f64> {
    let (neg, mut rest) = match d.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, d.strip_prefix('+').unwrap_or(d)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * scale;
        rest = &rest[u..];
    }
    Some(if neg { -total } else { total })
}

/// Seconds as Go prints a `time.Duration` (`1h2m3s`, `1.5s`, `0s`).
fn duration_text(secs: f64) -> String {
    if secs == 0.0 {
        return "0s".into();
    }
    let sign = if secs < 0.0 { "-" } else { "" };
    let a = secs.abs();
    if a < 1.0 {
        let ms = a * 1e3;
        return format!("{sign}{}ms", super::exec::go_float(ms));
    }
    let h = (a / 3600.0).floor();
    let m = ((a - h * 3600.0) / 60.0).floor();
    let s = a - h * 3600.0 - m * 60.0;
    let s = super::exec::go_float((s * 1e9).round() / 1e9);
    if h > 0.0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0.0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

fn b32enc(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(A[((n >> (35 - 5 * i)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b32dec(text: &str) -> Option<Vec<u8>> {
    let t = text.trim_end_matches('=');
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in t.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        bits = (bits << 5) | u64::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}

fn url_query_escape(t: &str) -> String {
    let mut out = String::new();
    for b in t.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `fmt.Sprint` of the arguments, as Go's `html`/`js`/`urlquery` evaluate them.
fn joined(a: &[Value]) -> String {
    if let [one] = a {
        return s(one);
    }
    sprint(a)
}

fn seq_text(v: &[i64]) -> String {
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
}

fn float_fold(a: &[Value], name: &str, f: fn(f64, f64) -> f64) -> Result<Value, String> {
    let Some((first, rest)) = a.split_first() else {
        return Err(format!(
            "wrong number of args for {name}: want at least 1 got 0"
        ));
    };
    Ok(float(
        rest.iter().fold(to_f64(first), |acc, x| f(acc, to_f64(x))),
    ))
}

pub(super) fn add(m: &mut HashMap<&'static str, Func>) {
    m.insert("typeIs", |_, a| {
        want(&a, 2, "typeIs")?;
        Ok(Value::Bool(s(&a[0]) == type_name(&a[1])))
    });
    m.insert("typeIsLike", |_, a| {
        want(&a, 2, "typeIsLike")?;
        let t = type_name(&a[1]);
        let want_t = s(&a[0]);
        Ok(Value::Bool(want_t == t || format!("*{want_t}") == t))
    });
    m.insert("atoi", |_, a| {
        want(&a, 1, "atoi")?;
        Ok(Value::from(s(&a[0]).parse::<i64>().unwrap_or(0)))
    });
    m.insert("ceil", |_, a| {
        want(&a, 1, "ceil")?;
        Ok(float(to_f64(&a[0]).ceil()))
    });
    m.insert("floor", |_, a| {
        want(&a, 1, "floor")?;
        Ok(float(to_f64(&a[0]).floor()))
    });
    m.insert("round", |_, a| {
        if !(2..=3).contains(&a.len()) {
            return Err(format!(
                "wrong number of args for round: want 2 got {}",
                a.len()
            ));
        }
        let on = a.get(2).map(to_f64).unwrap_or(0.5);
        let pow = 10f64.powf(to_f64(&a[1]));
        let digit = pow * to_f64(&a[0]);
        let r = if digit.fract() >= on {
            digit.ceil()
        } else {
            digit.floor()
        };
        Ok(float(r / pow))
    });
    m.insert("addf", |_, a| float_fold(&a, "addf", |x, y| x + y));
    m.insert("subf", |_, a| float_fold(&a, "subf", |x, y| x - y));
    m.insert("mulf", |_, a| float_fold(&a, "mulf", |x, y| x * y));
    m.insert("divf", |_, a| float_fold(&a, "divf", |x, y| x / y));
    m.insert("maxf", |_, a| float_fold(&a, "maxf", f64::max));
    m.insert("minf", |_, a| float_fold(&a, "minf", f64::min));
    m.insert("toRawJson", |_, a| {
        want(&a, 1, "toRawJson")?;
        Ok(Value::String(json_with(&a[0], false)))
    });
    m.insert("mustToRawJson", |_, a| {
        want(&a, 1, "mustToRawJson")?;
        Ok(Value::String(json_with(&a[0], false)))
    });
    m.insert("urlquery", |_, a| {
        Ok(Value::String(url_query_escape(&joined(&a))))
    });
    m.insert("html", |_, a| {
        let t = joined(&a);
        let mut out = String::with_capacity(t.len());
        for c in t.chars() {
            match c {
                '"' => out.push_str("&#34;"),
                '\'' => out.push_str("&#39;"),
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\0' => out.push('\u{FFFD}'),
                c => out.push(c),
            }
        }
        Ok(Value::String(out))
    });
    m.insert("js", |_, a| {
        let t = joined(&a);
        let mut out = String::with_capacity(t.len());
        for c in t.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '"' => out.push_str("\\\""),
                '<' => out.push_str("\\u003C"),
                '>' => out.push_str("\\u003E"),
                '&' => out.push_str("\\u0026"),
                '=' => out.push_str("\\u003D"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push(c),
            }
        }
        Ok(Value::String(out))
    });
    m.insert("slice", |_, a| {
        let Some((item, idx)) = a.split_first() else {
            return Err("slice needs an argument".into());
        };
        if idx.len() > 3 {
            return Err("too many slice indexes".into());
        }
        let idx: Vec<i64> = idx.iter().map(to_i64).collect();
        let len = match item {
            Value::String(t) => t.len(),
            Value::Array(l) => l.len(),
            other => return Err(format!("can't slice item of type {}", type_name(other))),
        } as i64;
        let i = idx.first().copied().unwrap_or(0);
        let j = idx.get(1).copied().unwrap_or(len);
        if i < 0 || j < i || j > len {
            return Err(format!("slice indexes out of range: [{i}:{j}] of {len}"));
        }
        let (i, j) = (i as usize, j as usize);
        Ok(match item {
            Value::String(t) => match t.get(i..j) {
                Some(x) => Value::String(x.to_string()),
                None => Value::String(String::from_utf8_lossy(&t.as_bytes()[i..j]).into_owned()),
            },
            Value::Array(l) => Value::Array(l[i..j].to_vec()),
            _ => Value::Null,
        })
    });
    m.insert("fromYamlArray", |_, a| {
        want(&a, 1, "fromYamlArray")?;
        Ok(match super::yaml::from_yaml(&s(&a[0])) {
            Ok(Value::Array(l)) => Value::Array(l),
            Ok(Value::Null) => Value::Array(vec![]),
            Ok(_) => Value::Array(vec![Value::String(
                "error unmarshaling JSON: cannot unmarshal object into a list".into(),
            )]),
            Err(e) => Value::Array(vec![Value::String(e)]),
        })
    });
    m.insert("fromJsonArray", |_, a| {
        want(&a, 1, "fromJsonArray")?;
        Ok(match serde_json::from_str::<Value>(&s(&a[0])) {
            Ok(Value::Array(l)) => Value::Array(l),
            Ok(_) => Value::Array(vec![Value::String(
                "json: cannot unmarshal into a list".into(),
            )]),
            Err(e) => Value::Array(vec![Value::String(e.to_string())]),
        })
    });
    m.insert("regexReplaceAllLiteral", |_, a| {
        want(&a, 3, "regexReplaceAllLiteral")?;
        let re = regex::Regex::new(&s(&a[0])).map_err(|e| e.to_string())?;
        Ok(Value::String(
            re.replace_all(&s(&a[1]), regex::NoExpand(&s(&a[2])))
                .into_owned(),
        ))
    });
    m.insert("regexSplit", |_, a| {
        want(&a, 3, "regexSplit")?;
        let re = regex::Regex::new(&s(&a[0])).map_err(|e| e.to_string())?;
        let text = s(&a[1]);
        let n = to_i64(&a[2]);
        let parts: Vec<Value> = if n < 0 {
            re.split(&text).map(|p| Value::String(p.into())).collect()
        } else {
            re.splitn(&text, n as usize)
                .map(|p| Value::String(p.into()))
                .collect()
        };
        Ok(Value::Array(parts))
    });
    m.insert("regexQuoteMeta", |_, a| {
        want(&a, 1, "regexQuoteMeta")?;
        Ok(Value::String(regex::escape(&s(&a[0]))))
    });
    m.insert("seq", |_, a| {
        let p: Vec<i64> = a.iter().map(to_i64).collect();
        let (start, step, end) = match p[..] {
            [] => return Ok(Value::String(String::new())),
            [end] => (1, if end < 1 { -1 } else { 1 }, end),
            [start, end] => (start, if end < start { -1 } else { 1 }, end),
            [start, step, end] => (start, step, end),
            _ => return Err("seq takes at most 3 arguments".into()),
        };
        if step == 0 || (end < start && step > 0) || (end > start && step < 0) {
            return Ok(Value::String(String::new()));
        }
        // i128: the difference of two i64 from a template must not overflow.
        let count = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
        if count > 1 << 20 {
            return Err(format!("seq of {count} numbers is too long"));
        }
        let v: Vec<i64> = (0..count as i64).map(|i| start + i * step).collect();
        Ok(Value::String(seq_text(&v)))
    });
    m.insert("untilStep", |_, a| {
        want(&a, 3, "untilStep")?;
        let (start, stop, step) = (to_i64(&a[0]), to_i64(&a[1]), to_i64(&a[2]));
        let count = if (stop < start && step >= 0) || (stop >= start && step <= 0) {
            0
        } else {
            let (span, step) = (
                (i128::from(stop) - i128::from(start)).abs(),
                i128::from(step).abs(),
            );
            (span + step - 1) / step
        };
        if count > 1 << 20 {
            return Err(format!("untilStep of {count} numbers is too long"));
        }
        Ok(Value::Array(
            (0..count as i64)
                .map(|i| Value::from(start + i * step))
                .collect(),
        ))
    });
    m.insert("chunk", |_, a| {
        want(&a, 2, "chunk")?;
        let size = to_i64(&a[0]);
        if size < 1 {
            return Err("chunk size must be positive".into());
        }
        Ok(Value::Array(
            list_of(&a[1])?
                .chunks(size as usize)
                .map(|c| Value::Array(c.to_vec()))
                .collect(),
        ))
    });
    m.insert("abbrev", |_, a| {
        want(&a, 2, "abbrev")?;
        let width = to_i64(&a[0]);
        let t = s(&a[1]);
        if width < 4 {
            return Ok(Value::String(String::new()));
        }
        let chars: Vec<char> = t.chars().collect();
        Ok(Value::String(if chars.len() as i64 <= width {
            t
        } else {
            chars[..width as usize - 3].iter().collect::<String>() + "..."
        }))
    });
    m.insert("camelcase", |_, a| {
        want(&a, 1, "camelcase")?;
        let out: String = s(&a[0])
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect();
        Ok(Value::String(out))
    });
    m.insert("swapcase", |_, a| {
        want(&a, 1, "swapcase")?;
        Ok(Value::String(
            s(&a[0])
                .chars()
                .flat_map(|c| {
                    if c.is_uppercase() {
                        c.to_lowercase().collect::<Vec<_>>()
                    } else {
                        c.to_uppercase().collect::<Vec<_>>()
                    }
                })
                .collect(),
        ))
    });
    m.insert("untitle", |_, a| {
        want(&a, 1, "untitle")?;
        let mut out = String::new();
        let mut start = true;
        for c in s(&a[0]).chars() {
            if start && !c.is_whitespace() {
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
            start = c.is_whitespace();
        }
        Ok(Value::String(out))
    });
    m.insert("initials", |_, a| {
        want(&a, 1, "initials")?;
        Ok(Value::String(
            s(&a[0])
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect(),
        ))
    });
    m.insert("splitn", |_, a| {
        want(&a, 3, "splitn")?;
        let n = to_i64(&a[1]);
        let text = s(&a[2]);
        let sep = s(&a[0]);
        let parts: Vec<&str> = if n < 0 {
            text.split(sep.as_str()).collect()
        } else {
            text.splitn(n as usize, sep.as_str()).collect()
        };
        Ok(Value::Object(
            parts
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::String((*p).into())))
                .collect(),
        ))
    });
    m.insert("sha512sum", |_, a| {
        want(&a, 1, "sha512sum")?;
        Ok(Value::String(canary_analyzer::hex(&sha2::Sha512::digest(
            s(&a[0]).as_bytes(),
        ))))
    });
    m.insert("adler32sum", |_, a| {
        want(&a, 1, "adler32sum")?;
        let (mut x, mut y) = (1u32, 0u32);
        for b in s(&a[0]).bytes() {
            x = (x + u32::from(b)) % 65521;
            y = (y + x) % 65521;
        }
        Ok(Value::String(((y << 16) | x).to_string()))
    });
    m.insert("b32enc", |_, a| {
        want(&a, 1, "b32enc")?;
        Ok(Value::String(b32enc(s(&a[0]).as_bytes())))
    });
    m.insert("b32dec", |_, a| {
        want(&a, 1, "b32dec")?;
        Ok(Value::String(match b32dec(&s(&a[0])) {
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
            None => "illegal base32 data".into(),
        }))
    });
    m.insert("randAlphaNum", |x, a| {
        want(&a, 1, "randAlphaNum")?;
        x_generated(x, random_from(to_i64(&a[0]), &[ALPHA, DIGITS].concat()))
    });
    m.insert("randAlpha", |x, a| {
        want(&a, 1, "randAlpha")?;
        x_generated(x, random_from(to_i64(&a[0]), ALPHA))
    });
    m.insert("randNumeric", |x, a| {
        want(&a, 1, "randNumeric")?;
        x_generated(x, random_from(to_i64(&a[0]), DIGITS))
    });
    m.insert("randAscii", |x, a| {
        want(&a, 1, "randAscii")?;
        let printable: Vec<u8> = (b' '..=b'~').collect();
        x_generated(x, random_from(to_i64(&a[0]), &printable))
    });
    m.insert("uuidv4", |_, a| {
        want(&a, 0, "uuidv4")?;
        let mut b = [random_u64().to_be_bytes(), random_u64().to_be_bytes()].concat();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = canary_analyzer::hex(&b);
        Ok(Value::String(format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )))
    });
    m.insert("now", |_, a| {
        want(&a, 0, "now")?;
        Ok(Value::from(unix_now()))
    });
    m.insert("date", |_, a| {
        want(&a, 2, "date")?;
        Ok(Value::String(format_time(&s(&a[0]), &a[1])))
    });
    m.insert("dateInZone", |_, a| {
        want(&a, 3, "dateInZone")?;
        Ok(Value::String(format_time(&s(&a[0]), &a[1])))
    });
    m.insert("htmlDate", |_, a| {
        want(&a, 1, "htmlDate")?;
        Ok(Value::String(format_time("2006-01-02", &a[0])))
    });
    m.insert("htmlDateInZone", |_, a| {
        want(&a, 2, "htmlDateInZone")?;
        Ok(Value::String(format_time("2006-01-02", &a[0])))
    });
    m.insert("unixEpoch", |_, a| {
        want(&a, 1, "unixEpoch")?;
        Ok(Value::String(to_i64(&a[0]).to_string()))
    });
    m.insert("dateModify", |_, a| {
        want(&a, 2, "dateModify")?;
        let t = to_i64(&a[1]);
        Ok(Value::from(match go_duration(&s(&a[0])) {
            Some(d) => t.saturating_add(d as i64),
            None => t,
        }))
    });
    m.insert("duration", |_, a| {
        want(&a, 1, "duration")?;
        Ok(Value::String(duration_text(to_i64(&a[0]) as f64)))
    });
    m.insert("toDate", |_, a| {
        want(&a, 2, "toDate")?;
        let fmt = go_layout(&s(&a[0]));
        let text = s(&a[1]);
        let secs = chrono::NaiveDateTime::parse_from_str(&text, &fmt)
            .map(|d| d.and_utc().timestamp())
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(&text, &fmt).map(|d| {
                    d.and_hms_opt(0, 0, 0)
                        .map(|t| t.and_utc().timestamp())
                        .unwrap_or(0)
                })
            })
            .unwrap_or(-62_135_596_800);
        Ok(Value::from(secs))
    });
    m.insert("toToml", |_, a| {
        want(&a, 1, "toToml")?;
        Ok(Value::String(to_toml(&a[0])))
    });
    m.insert("abbrevboth", |_, a| {
        want(&a, 3, "abbrevboth")?;
        let (left, right, text) = (to_i64(&a[0]), to_i64(&a[1]), s(&a[2]));
        // Sprig returns the text as it is for widths AbbreviateFull would refuse.
        if right < 4 || (left > 0 && right < 7) {
            return Ok(Value::String(text));
        }
        Ok(Value::String(
            abbreviate_full(&text, left, right).unwrap_or_default(),
        ))
    });
    let table: Vec<(&'static str, Func)> = MUST_ALIASES
        .iter()
        .filter_map(|(alias, of)| m.get(of).map(|f| (*alias, *f)))
        .collect();
    for (alias, f) in table {
        m.entry(alias).or_insert(f);
    }
}

/// Go's `goutils.AbbreviateFull` on bytes (as Go slices strings): `None` where Go
/// returns an error.
fn abbreviate_full(text: &str, offset: i64, max_width: i64) -> Option<String> {
    let b = text.as_bytes();
    let len = b.len() as i128;
    let (offset, max_width) = (offset as i128, max_width as i128);
    if b.is_empty() {
        return Some(String::new());
    }
    if max_width < 4 {
        return None;
    }
    if len <= max_width {
        return Some(text.to_string());
    }
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    let take = |from: i128, to: i128| -> String {
        let (from, to) = (from.clamp(0, len) as usize, to.clamp(0, len) as usize);
        String::from_utf8_lossy(&b[from..to.max(from)]).into_owned()
    };
    if offset <= 4 {
        return Some(format!("{}...", take(0, max_width - 3)));
    }
    if max_width < 7 {
        return None;
    }
    if offset + max_width - 3 < len {
        let rest = take(offset, len);
        return abbreviate_full(&rest, 0, (max_width - 3) as i64).map(|r| format!("...{r}"));
    }
    Some(format!("...{}", take(len - (max_width - 3), len)))
}

/// `toToml`: the TOML BurntSushi/toml's encoder writes (what Helm uses): a table's plain
/// keys first, then its sub-tables and arrays of tables, keys sorted, nested tables
/// indented two spaces a level; nulls left out.
fn to_toml(v: &Value) -> String {
    let Value::Object(_) = v else {
        // A value that is not a table is written as the element alone.
        return toml_inline(v);
    };
    let mut out = String::new();
    toml_table(&mut out, &mut Vec::new(), v);
    out
}

fn is_table(v: &Value) -> bool {
    match v {
        Value::Object(_) => true,
        Value::Array(a) => !a.is_empty() && a.iter().all(Value::is_object),
        _ => false,
    }
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}

fn toml_string(t: &str) -> String {
    let mut out = String::from("\"");
    for c in t.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_inline(v: &Value) -> String {
    match v {
        Value::String(t) => toml_string(t),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => i.to_string(),
            _ => {
                // strconv.FormatFloat(f, 'g', -1, 64), then ".0" on a bare integer.
                let t = super::exec::go_float(n.as_f64().unwrap_or(0.0));
                if t.contains(['.', 'e', 'N', 'I']) {
                    t
                } else {
                    format!("{t}.0")
                }
            }
        },
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .filter(|x| !x.is_null())
                .map(toml_inline)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().filter(|k| !o[k.as_str()].is_null()).collect();
            keys.sort();
            format!(
                "{{{}}}",
                keys.iter()
                    .map(|k| format!("{} = {}", toml_key(k), toml_inline(&o[k.as_str()])))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Value::Null => String::new(),
    }
}

fn toml_table(out: &mut String, key: &mut Vec<String>, v: &Value) {
    let Value::Object(o) = v else { return };
    let indent = "  ".repeat(key.len());
    let mut direct: Vec<&String> = o.keys().filter(|k| !is_table(&o[k.as_str()])).collect();
    let mut sub: Vec<&String> = o.keys().filter(|k| is_table(&o[k.as_str()])).collect();
    direct.sort();
    sub.sort();
    for k in direct {
        let val = &o[k.as_str()];
        if val.is_null() {
            continue;
        }
        out.push_str(&format!("{indent}{} = {}\n", toml_key(k), toml_inline(val)));
    }
    for k in sub {
        key.push(toml_key(k));
        let path = key.join(".");
        let head_indent = "  ".repeat(key.len() - 1);
        match &o[k.as_str()] {
            Value::Array(items) => {
                for item in items {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(&format!("{head_indent}[[{path}]]\n"));
                    toml_table(out, key, item);
                }
            }
            table => {
                if key.len() == 1 && !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&format!("{head_indent}[{path}]\n"));
                toml_table(out, key, table);
            }
        }
        key.pop();
    }
}

#[cfg(test)]
mod tests {
    use crate::template::Engine;
    use serde_json::json;

    fn render(src: &str) -> String {
        let mut e = Engine::new();
        e.add("t", src).unwrap();
        e.render("t", &json!({"m": {"a": 1}, "s": "x"}))
            .unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn sprig_extras_as_go_prints_them() {
        assert_eq!(
            render(
                r#"{{ typeIs "string" .s }} {{ typeIs "int" .s }} {{ typeIsLike "map[string]interface {}" .m }}"#
            ),
            "true false true"
        );
        assert_eq!(
            render(
                r#"{{ atoi "42" }} {{ atoi "x" }} {{ ceil 1.2 }} {{ floor 1.8 }} {{ round 3.14159 2 }}"#
            ),
            "42 0 2 1 3.14"
        );
        assert_eq!(
            render(r#"{{ addf 1.5 2 }} {{ subf 10 2.5 }} {{ mulf 1.5 2 }} {{ divf 7 2 }}"#),
            "3.5 7.5 3 3.5"
        );
        assert_eq!(
            render(r#"{{ toRawJson (dict "a" "<b>&") }} {{ toJson (dict "a" "<b>") }}"#),
            r#"{"a":"<b>&"} {"a":"\u003cb\u003e"}"#
        );
        assert_eq!(
            render(r#"{{ urlquery "a b&c" }} {{ html "<a href='x'>" }} {{ js "it's <x>=" }}"#),
            r#"a+b%26c &lt;a href=&#39;x&#39;&gt; it\'s \u003Cx\u003E\u003D"#
        );
        assert_eq!(
            render(r#"{{ slice "abcdef" 1 3 }} {{ slice (list 1 2 3) 1 }}"#),
            "bc [2 3]"
        );
        assert_eq!(
            render(
                r#"{{ seq 3 }}|{{ seq 5 2 }}|{{ seq 0 2 6 }}|{{ untilStep 0 10 3 }}|{{ chunk 2 (list 1 2 3) }}"#
            ),
            "1 2 3|5 4 3 2|0 2 4 6|[0 3 6 9]|[[1 2] [3]]"
        );
        assert_eq!(
            render(
                r#"{{ regexSplit "[,;]" "a,b;c" -1 }} {{ regexReplaceAllLiteral "a" "aa" "$1" }} {{ regexQuoteMeta "a.b" }}"#
            ),
            r"[a b c] $1$1 a\.b"
        );
        assert_eq!(
            render(
                r#"{{ abbrev 5 "hello world" }} {{ camelcase "foo_bar" }} {{ swapcase "aB" }} {{ untitle "Hello World" }} {{ initials "John Doe" }}"#
            ),
            "he... FooBar Ab hello world JD"
        );
        assert_eq!(
            render(
                r#"{{ (splitn "$" 2 "foo$bar$baz")._1 }} {{ adler32sum "hello" }} {{ b32enc "hi" }} {{ b32dec "NBUQ====" }}"#
            ),
            "bar$baz 103547413 NBUQ==== hi"
        );
        assert_eq!(
            render(
                r#"{{ randAlphaNum 12 | len }} {{ uuidv4 | len }} {{ regexMatch "^[a-z0-9]{12}$" (randAlphaNum 12 | lower) }}"#
            ),
            "12 36 true"
        );
        assert_eq!(
            render(
                r#"{{ date "2006-01-02 15:04:05 Jan Mon" 0 }} {{ htmlDate 86400 }} {{ dateModify "1h30m" 0 | unixEpoch }} {{ duration 3723 }}"#
            ),
            "1970-01-01 00:00:00 Jan Thu 1970-01-02 5400 1h2m3s"
        );
        assert_eq!(
            render(
                r#"{{ toDate "2006-01-02" "2017-12-31" | unixEpoch }} {{ fromYamlArray "- a\n- b" }} {{ fromJsonArray "[1,2]" }}"#
            ),
            "1514678400 [a b] [1 2]"
        );
        assert_eq!(
            render(
                r#"{{ mustMerge (dict "a" 1) (dict "b" 2) | toJson }} {{ mustToRawJson (list "&") }}"#
            ),
            r#"{"a":1,"b":2} ["&"]"#
        );
        // Extremes from a template are errors or clamped, never an overflow.
        for src in [
            "{{ seq -9223372036854775808 9223372036854775807 }}",
            "{{ untilStep -9223372036854775808 9223372036854775807 1 }}",
        ] {
            let mut e = Engine::new();
            e.add("t", src).unwrap();
            assert!(e.render("t", &json!({})).is_err(), "{src}");
        }
        assert_eq!(
            render(r#"{{ dateModify "1h" 9223372036854775807 }}"#),
            "9223372036854775807"
        );
    }

    #[test]
    fn abbreviations_survive_extreme_offsets() {
        assert_eq!(
            super::abbreviate_full("abcdefghijklmno", i64::MIN, 10).as_deref(),
            Some("abcdefg...")
        );
        assert_eq!(
            super::abbreviate_full("abcdefghijklmno", i64::MAX, i64::MAX).as_deref(),
            Some("abcdefghijklmno")
        );
        assert!(super::abbreviate_full("abcdefghijklmno", 9, 5).is_none());
    }
}
