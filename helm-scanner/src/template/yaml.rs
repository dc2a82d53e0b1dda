//! YAML as Helm reads and writes it. Reading: serde-saphyr (bounded: alias, depth and
//! size budgets) into JSON-shaped values, numbers as float64 the way Helm's values are
//! after its YAML → JSON round trip. Writing (`toYaml`): the output of `sigs.k8s.io/yaml`
//! (JSON, then go-yaml v2): keys sorted, block style, two-space indents, sequences not
//! indented under their key, strings quoted only when a plain scalar would read back as
//! something else.

use serde_json::{Map, Value};

/// Largest YAML document read.
pub const MAX_YAML_BYTES: usize = 16 << 20;

/// Parse one YAML document (untrusted) into a value; numbers become float64.
pub fn from_yaml(text: &str) -> Result<Value, String> {
    if text.len() > MAX_YAML_BYTES {
        return Err(format!("YAML larger than {MAX_YAML_BYTES} bytes"));
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    let v: HelmValue = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    Ok(floats(v.0))
}

/// A YAML value as `sigs.k8s.io/yaml` (Helm's reader) leaves it: YAML 1.1 scalars, and
/// keys that are not strings (a plain `y`, `on`, `1`) turned into their text (`"true"`,
/// `"1"`), where serde_json's own reader would keep the key as written.
struct HelmValue(Value);

/// A mapping key, as text.
struct HelmKey(String);

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = HelmValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<HelmValue, E> {
        Ok(HelmValue(Value::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<HelmValue, E> {
        Ok(HelmValue(Value::from(n)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<HelmValue, E> {
        Ok(HelmValue(Value::from(n)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<HelmValue, E> {
        Ok(HelmValue(
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        ))
    }
    fn visit_str<E>(self, s: &str) -> Result<HelmValue, E> {
        Ok(HelmValue(Value::String(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<HelmValue, E> {
        Ok(HelmValue(Value::String(s)))
    }
    fn visit_unit<E>(self) -> Result<HelmValue, E> {
        Ok(HelmValue(Value::Null))
    }
    fn visit_none<E>(self) -> Result<HelmValue, E> {
        Ok(HelmValue(Value::Null))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<HelmValue, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<HelmValue, A::Error> {
        let mut out = Vec::new();
        while let Some(HelmValue(v)) = a.next_element()? {
            out.push(v);
        }
        Ok(HelmValue(Value::Array(out)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<HelmValue, A::Error> {
        let mut out = Map::new();
        while let Some(HelmKey(k)) = a.next_key()? {
            let HelmValue(v) = a.next_value()?;
            out.insert(k, v);
        }
        Ok(HelmValue(Value::Object(out)))
    }
}

impl<'de> serde::Deserialize<'de> for HelmValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for HelmKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let HelmValue(v) = d.deserialize_any(ValueVisitor)?;
        Ok(HelmKey(match v {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".into(),
            Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() => super::exec::go_float(f),
                _ => n.to_string(),
            },
            Value::Array(_) | Value::Object(_) => {
                return Err(D::Error::custom("a list or mapping as a mapping key"));
            }
        }))
    }
}

/// Every number as a float64, as `json.Unmarshal` into `interface{}` leaves them.
pub fn floats(v: Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Value::Array(a) => Value::Array(a.into_iter().map(floats).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, floats(v))).collect()),
        other => other,
    }
}

/// Whether go-yaml v2 would read a plain scalar as something other than a string.
fn resolves_to_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if s.is_empty() || SPECIAL.contains(&s) {
        return true;
    }
    let t = s.replace('_', "");
    let body = t.strip_prefix(['+', '-']).unwrap_or(&t);
    let int = body.bytes().all(|c| c.is_ascii_digit()) && !body.is_empty()
        || body
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()))
        || body
            .strip_prefix("0b")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|c| c == b'0' || c == b'1'))
        || body
            .strip_prefix("0o")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|c| (b'0'..=b'7').contains(&c)));
    if int {
        return true;
    }
    // Floats: digits with a point and/or an exponent (go-yaml v2's float regexp).
    let float = {
        let (mant, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let mant_ok = !mant.is_empty()
            && mant.bytes().all(|c| c.is_ascii_digit() || c == b'.')
            && mant.bytes().filter(|c| *c == b'.').count() <= 1
            && mant.bytes().any(|c| c.is_ascii_digit());
        let exp_ok = exp.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
        });
        mant_ok && exp_ok && (mant.contains('.') || exp.is_some())
    };
    if float {
        return true;
    }
    // Base 60 (`1:30`), which go-yaml v2 quotes.
    let parts: Vec<&str> = body.split(':').collect();
    parts.len() > 1
        && parts[0].bytes().all(|c| c.is_ascii_digit())
        && !parts[0].is_empty()
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Whether the emitter allows this string as a plain scalar (libyaml's analysis).
fn plain_allowed(s: &str) -> bool {
    if s.is_empty() || s.contains('\n') {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    let last = s.chars().last().unwrap_or(' ');
    if first.is_whitespace() || last.is_whitespace() {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // `-x`/`?x`/`:x` are plain when not followed by a space.
        let second = s.chars().nth(1);
        if !(matches!(first, '-' | '?' | ':') && second.is_some_and(|c| !c.is_whitespace())) {
            return false;
        }
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{feff}')
        || s.contains('\t')
    {
        return false;
    }
    // Flow indicators are fine in block context except `, [ ] { }` … go-yaml allows them
    // inside; only the leading ones matter (checked above).
    true
}

/// Single quoting is allowed when the text has no line breaks or special characters.
fn single_allowed(s: &str) -> bool {
    !s.contains('\n') && !s.chars().any(|c| c.is_control())
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A string as go-yaml v2 writes it when it is not a multi-line literal.
fn scalar_string(s: &str) -> String {
    if !resolves_to_non_string(s) && plain_allowed(s) {
        return s.to_string();
    }
    if resolves_to_non_string(s) {
        // The encoder asks for double quotes for strings that look like other types.
        return double_quoted(s);
    }
    if single_allowed(s) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    double_quoted(s)
}

/// A literal block (`|`, `|-`, `|+`) for multi-line strings, or `None` when the emitter
/// would not allow one (then the string is double-quoted).
fn literal(s: &str, indent: usize) -> Option<String> {
    if s.chars().any(|c| c.is_control() && c != '\n')
        || s.lines().any(|l| l.ends_with(' ') || l.ends_with('\t'))
        || s.starts_with(' ')
    {
        return None;
    }
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    let pad = " ".repeat(indent);
    let body = s.strip_suffix('\n').unwrap_or(s);
    let mut out = format!("|{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    Some(out)
}

fn number(n: &serde_json::Number) -> String {
    match n.as_i64() {
        Some(i) => i.to_string(),
        None => {
            let f = n.as_f64().unwrap_or(0.0);
            // JSON first: a whole float is written without a point, then read back as
            // an int by go-yaml.
            if f.fract() == 0.0 && f.abs() < 1e21 {
                format!("{f:.0}")
            } else {
                super::exec::go_float(f)
            }
        }
    }
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(o) if !o.is_empty() => emit_map(o, indent, out),
        Value::Array(a) if !a.is_empty() => emit_seq(a, indent, out),
        other => {
            out.push_str(&inline(other, indent));
            out.push('\n');
        }
    }
}

/// A value on the same line as its key or dash.
fn inline(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) if s.contains('\n') => {
            literal(s, indent).unwrap_or_else(|| double_quoted(s))
        }
        Value::String(s) => scalar_string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn emit_map(o: &Map<String, Value>, indent: usize, out: &mut String) {
    let mut keys: Vec<&String> = o.keys().collect();
    keys.sort();
    let pad = " ".repeat(indent);
    for k in keys {
        let v = &o[k.as_str()];
        out.push_str(&pad);
        out.push_str(&scalar_string(k));
        out.push(':');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                emit_map(m, indent + 2, out);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                emit_seq(a, indent, out);
            }
            other => {
                out.push(' ');
                out.push_str(&inline(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn emit_seq(a: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for v in a {
        out.push_str(&pad);
        out.push('-');
        match v {
            Value::Object(m) if !m.is_empty() => {
                // The first key shares the dash's line.
                let mut inner = String::new();
                emit_map(m, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(inner.trim_start_matches(' '));
            }
            Value::Array(s) if !s.is_empty() => {
                let mut inner = String::new();
                emit_seq(s, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(inner.trim_start_matches(' '));
            }
            other => {
                out.push(' ');
                out.push_str(&inline(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// `toYaml` (before Helm trims the final newline).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_yaml_1_1_booleans_are_booleans_as_in_helm() {
        let v = from_yaml("a: yes\nb: off\nc: \"no\"\nd: N\ne: On\n").unwrap();
        assert_eq!(v["a"], serde_json::json!(true));
        assert_eq!(v["b"], serde_json::json!(false));
        assert_eq!(v["c"], serde_json::json!("no"));
        assert_eq!(v["d"], serde_json::json!(false));
        assert_eq!(v["e"], serde_json::json!(true));
        // Keys too, as sigs.k8s.io/yaml turns them into text; quoted ones stay.
        let v = from_yaml("y: 1\n\"n\": 2\non: 3\n10: 4\nplain: 5\n").unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["10", "n", "plain", "true"]);
        assert_eq!(v["true"], serde_json::json!(3.0));
    }

    #[test]
    fn writes_like_go_yaml_v2() {
        let v = json!({
            "b": {"y": [1, "two", {"k": "v", "a": true}], "x": ""},
            "a": "yes",
            "c": "line1\nline2",
            "d": [],
            "e": {},
            "f": "has: colon",
            "g": 1.5,
            "h": null,
            "i": "1.0",
        });
        assert_eq!(
            to_yaml(&v),
            "a: \"yes\"\nb:\n  x: \"\"\n  \"y\":\n  - 1\n  - two\n  - a: true\n    k: v\nc: |-\n  line1\n  line2\nd: []\ne: {}\nf: 'has: colon'\ng: 1.5\nh: null\ni: \"1.0\"\n"
        );
    }

    #[test]
    fn reads_bounded_with_float_numbers() {
        let v = from_yaml("a: 3\nb: [1, x]\n").unwrap();
        assert_eq!(v["a"].as_f64(), Some(3.0));
        assert!(v["a"].is_f64());
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n".to_string()
            + &(b'b'..=b'z')
                .map(|c| {
                    let p = (c - 1) as char;
                    format!(
                        "{}: &{} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n",
                        c as char, c as char
                    )
                })
                .collect::<String>();
        assert!(from_yaml(&bomb).is_err(), "billion laughs must be refused");
    }
}
