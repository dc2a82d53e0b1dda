//! The functions a chart can call: Go's template built-ins, the Sprig functions charts use,
//! and Helm's own (`include`, `tpl`, `required`, `toYaml`, `fromYaml`, `toJson`, `lookup`).
//! Each follows the Go implementation's behaviour on the types charts pass it.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::Digest;

use super::exec::{Exec, Func, go_float, to_text, truthy, type_name};

pub(super) fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => to_text(other),
    }
}

pub(super) fn want(args: &[Value], n: usize, name: &str) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// Go's `cast.ToInt64`-ish conversion Sprig uses (`int`, `add`, …).
pub fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().map(|f| f as i64))
                .unwrap_or(0)
        }
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

pub(super) fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

pub(super) fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

pub(super) fn list_of(v: &Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::Null => Ok(vec![]),
        other => Err(format!("cannot convert {} to a list", type_name(other))),
    }
}

/// Go's `==` as `eq` applies it: numbers by value across int/float, else equal JSON.
fn basic_eq(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Ok(match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        }),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            Err("non-comparable type".into())
        }
        (Value::Null, Value::Null) => Ok(true),
        (Value::Null, _) | (_, Value::Null) => Ok(false),
        (x, y) if std::mem::discriminant(x) != std::mem::discriminant(y) => {
            Err("incompatible types for comparison".into())
        }
        (x, y) => Ok(x == y),
    }
}

fn cmp(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .ok_or_else(|| "incomparable".to_string()),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err("incompatible types for comparison".into()),
    }
}

/// Go's `fmt.Sprintf` for the verbs charts use: `%s %v %d %q %f %t %x %X %o %%`, with
/// flags, width and precision.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = it.peek() {
            if "+-# 0".contains(f) {
                flags.push(f);
                it.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            it.next();
        }
        let mut prec: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            let mut p = String::new();
            while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                it.next();
            }
            prec = Some(p.parse::<usize>().unwrap_or(0).min(MAX_PAD));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(ai) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        ai += 1;
        let body = match verb {
            's' | 'v' => {
                let t = match arg {
                    Value::Null if verb == 'v' => "<nil>".into(),
                    Value::Null => "%!s(<nil>)".into(),
                    other => to_text(other),
                };
                match prec {
                    Some(p) => t.chars().take(p).collect(),
                    None => t,
                }
            }
            'q' => match arg {
                Value::String(x) => go_quote(x),
                other => format!("%!q({})", to_text(other)),
            },
            'd' => match arg {
                Value::Number(n) if n.as_i64().is_some() => {
                    let i = n.as_i64().unwrap_or(0);
                    if flags.contains('+') && i >= 0 {
                        format!("+{i}")
                    } else {
                        i.to_string()
                    }
                }
                other => format!("%!d({}={})", type_name(other), to_text(other)),
            },
            'f' | 'F' => match arg {
                Value::Number(n) => format!("{:.*}", prec.unwrap_or(6), n.as_f64().unwrap_or(0.0)),
                other => format!("%!f({}={})", type_name(other), to_text(other)),
            },
            'g' => match arg {
                Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
                other => format!("%!g({}={})", type_name(other), to_text(other)),
            },
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                other => format!("%!t({}={})", type_name(other), to_text(other)),
            },
            'x' | 'X' | 'o' | 'b' => match arg {
                Value::Number(n) if n.as_i64().is_some() => {
                    let i = n.as_i64().unwrap_or(0);
                    match verb {
                        'x' => format!("{i:x}"),
                        'X' => format!("{i:X}"),
                        'o' => format!("{i:o}"),
                        _ => format!("{i:b}"),
                    }
                }
                Value::String(x) if verb == 'x' => x.bytes().map(|b| format!("{b:02x}")).collect(),
                Value::String(x) if verb == 'X' => x.bytes().map(|b| format!("{b:02X}")).collect(),
                other => format!("%!{verb}({}={})", type_name(other), to_text(other)),
            },
            _ => format!("%!{verb}({}={})", type_name(arg), to_text(arg)),
        };
        // Widths and precisions past a few MB are a memory attack, not formatting.
        let w: usize = width.parse().unwrap_or(0).min(MAX_PAD);
        let len = body.chars().count();
        if len < w {
            let pad = w - len;
            if flags.contains('-') {
                out.push_str(&body);
                out.push_str(&" ".repeat(pad));
            } else if flags.contains('0') && matches!(verb, 'd' | 'f' | 'x' | 'X') {
                let (sign, digits) = if let Some(d) = body.strip_prefix('-') {
                    ("-", d)
                } else {
                    ("", body.as_str())
                };
                out.push_str(sign);
                out.push_str(&"0".repeat(pad));
                out.push_str(digits);
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    if ai < args.len() {
        let extra: Vec<String> = args[ai..]
            .iter()
            .map(|a| format!("{}={}", type_name(a), to_text(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        out.push_str(&match a {
            Value::Null => "<nil>".into(),
            other => to_text(other),
        });
    }
    out
}

/// Largest width, precision or indent honoured.
const MAX_PAD: usize = 1 << 20;

fn indent_by(n: i64, text: &str) -> String {
    let pad = " ".repeat((n.max(0) as usize).min(MAX_PAD));
    format!("{pad}{}", text.replace('\n', &format!("\n{pad}")))
}

/// Go's `strings.Title`-ish: first letter of each word upper-cased.
fn title(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut start = true;
    for c in t.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace() || c == '-' || c == '_';
    }
    out
}

fn get_dict(v: &Value, name: &str) -> Result<Map<String, Value>, String> {
    match v {
        Value::Object(o) => Ok(o.clone()),
        Value::Null => Ok(Map::new()),
        other => Err(format!("{name}: expected a map, got {}", type_name(other))),
    }
}

/// Sprig `merge`/`mergeOverwrite`: deep merge of maps into the first.
fn deep_merge(dst: &mut Map<String, Value>, src: &Map<String, Value>, overwrite: bool) {
    for (k, v) in src {
        match (dst.get_mut(k), v) {
            (Some(Value::Object(d)), Value::Object(s)) => deep_merge(d, s, overwrite),
            (Some(existing), _) => {
                if overwrite || existing.is_null() {
                    *existing = v.clone();
                }
            }
            (None, _) => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Every function, by name.
pub fn all() -> HashMap<&'static str, Func> {
    let mut m: HashMap<&'static str, Func> = HashMap::new();
    // Go built-ins (`and`/`or` are evaluated lazily by the executor).
    m.insert("not", |_, a| {
        want(&a, 1, "not")?;
        Ok(Value::Bool(!truthy(&a[0])))
    });
    m.insert("len", |_, a| {
        want(&a, 1, "len")?;
        Ok(Value::from(match &a[0] {
            Value::String(x) => x.len(),
            Value::Array(x) => x.len(),
            Value::Object(x) => x.len(),
            Value::Null => 0,
            other => return Err(format!("len of type {}", type_name(other))),
        } as i64))
    });
    m.insert("index", |_, a| {
        let Some((first, keys)) = a.split_first() else {
            return Err("wrong number of args for index: want at least 1 got 0".into());
        };
        let mut v = first.clone();
        for k in keys {
            v = match (&v, k) {
                (Value::Object(o), key) => o.get(&s(key)).cloned().unwrap_or(Value::Null),
                (Value::Array(arr), Value::Number(n)) => {
                    let i = n.as_i64().unwrap_or(-1);
                    if i < 0 || i as usize >= arr.len() {
                        return Err(format!("index out of range: {i}"));
                    }
                    arr[i as usize].clone()
                }
                (Value::Null, _) => Value::Null,
                (other, _) => return Err(format!("can't index item of type {}", type_name(other))),
            };
        }
        Ok(v)
    });
    m.insert("print", |_, a| Ok(Value::String(sprint(&a))));
    m.insert("println", |_, a| {
        let parts: Vec<String> = a
            .iter()
            .map(|x| match x {
                Value::Null => "<nil>".into(),
                o => to_text(o),
            })
            .collect();
        Ok(Value::String(parts.join(" ") + "\n"))
    });
    m.insert("printf", |_, a| {
        let Some((f, rest)) = a.split_first() else {
            return Err("wrong number of args for printf".into());
        };
        Ok(Value::String(sprintf(&s(f), rest)))
    });
    m.insert("eq", |_, a| {
        if a.len() < 2 {
            return Err("missing argument for comparison".into());
        }
        for b in &a[1..] {
            if basic_eq(&a[0], b)? {
                return Ok(Value::Bool(true));
            }
        }
        Ok(Value::Bool(false))
    });
    m.insert("ne", |_, a| {
        want(&a, 2, "ne")?;
        Ok(Value::Bool(!basic_eq(&a[0], &a[1])?))
    });
    m.insert("lt", |_, a| {
        want(&a, 2, "lt")?;
        Ok(Value::Bool(cmp(&a[0], &a[1])?.is_lt()))
    });
    m.insert("le", |_, a| {
        want(&a, 2, "le")?;
        Ok(Value::Bool(cmp(&a[0], &a[1])?.is_le()))
    });
    m.insert("gt", |_, a| {
        want(&a, 2, "gt")?;
        Ok(Value::Bool(cmp(&a[0], &a[1])?.is_gt()))
    });
    m.insert("ge", |_, a| {
        want(&a, 2, "ge")?;
        Ok(Value::Bool(cmp(&a[0], &a[1])?.is_ge()))
    });
    // Sprig: defaults and logic.
    m.insert("default", |_, a| {
        want(&a, 2, "default")?;
        Ok(if truthy(&a[1]) {
            a[1].clone()
        } else {
            a[0].clone()
        })
    });
    m.insert("empty", |_, a| {
        want(&a, 1, "empty")?;
        Ok(Value::Bool(!truthy(&a[0])))
    });
    m.insert("coalesce", |_, a| {
        Ok(a.into_iter().find(truthy).unwrap_or(Value::Null))
    });
    m.insert("ternary", |_, a| {
        want(&a, 3, "ternary")?;
        Ok(if truthy(&a[2]) {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    m.insert("fail", |_, a| Err(a.first().map(s).unwrap_or_default()));
    m.insert("required", |_, a| {
        want(&a, 2, "required")?;
        match &a[1] {
            Value::Null => Err(s(&a[0])),
            Value::String(x) if x.is_empty() => Err(s(&a[0])),
            v => Ok(v.clone()),
        }
    });
    // Strings.
    m.insert("quote", |_, a| {
        let q: Vec<String> = a
            .iter()
            .filter(|x| !x.is_null())
            .map(|x| go_quote(&s(x)))
            .collect();
        Ok(Value::String(q.join(" ")))
    });
    m.insert("squote", |_, a| {
        let q: Vec<String> = a
            .iter()
            .filter(|x| !x.is_null())
            .map(|x| format!("'{}'", s(x)))
            .collect();
        Ok(Value::String(q.join(" ")))
    });
    m.insert("upper", |_, a| {
        want(&a, 1, "upper")?;
        Ok(Value::String(s(&a[0]).to_uppercase()))
    });
    m.insert("lower", |_, a| {
        want(&a, 1, "lower")?;
        Ok(Value::String(s(&a[0]).to_lowercase()))
    });
    m.insert("title", |_, a| {
        want(&a, 1, "title")?;
        Ok(Value::String(title(&s(&a[0]))))
    });
    m.insert("trim", |_, a| {
        want(&a, 1, "trim")?;
        Ok(Value::String(s(&a[0]).trim().to_string()))
    });
    m.insert("trimSuffix", |_, a| {
        want(&a, 2, "trimSuffix")?;
        let (suf, t) = (s(&a[0]), s(&a[1]));
        Ok(Value::String(
            t.strip_suffix(suf.as_str()).unwrap_or(&t).to_string(),
        ))
    });
    m.insert("trimPrefix", |_, a| {
        want(&a, 2, "trimPrefix")?;
        let (pre, t) = (s(&a[0]), s(&a[1]));
        Ok(Value::String(
            t.strip_prefix(pre.as_str()).unwrap_or(&t).to_string(),
        ))
    });
    m.insert("trimAll", |_, a| {
        want(&a, 2, "trimAll")?;
        let (cut, t) = (s(&a[0]), s(&a[1]));
        Ok(Value::String(
            t.trim_matches(|c| cut.contains(c)).to_string(),
        ))
    });
    m.insert("trunc", |_, a| {
        want(&a, 2, "trunc")?;
        let (n, t) = (to_i64(&a[0]), s(&a[1]));
        let chars: Vec<char> = t.chars().collect();
        // Sprig counts bytes; charts truncate ASCII names.
        Ok(Value::String(if n >= 0 {
            t.get(..(n as usize).min(t.len()))
                .map(str::to_string)
                .unwrap_or_else(|| chars.iter().take(n as usize).collect())
        } else {
            let k = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
            t.get(t.len().saturating_sub(k)..).unwrap_or(&t).to_string()
        }))
    });
    m.insert("contains", |_, a| {
        want(&a, 2, "contains")?;
        Ok(Value::Bool(s(&a[1]).contains(&s(&a[0]))))
    });
    m.insert("hasPrefix", |_, a| {
        want(&a, 2, "hasPrefix")?;
        Ok(Value::Bool(s(&a[1]).starts_with(&s(&a[0]))))
    });
    m.insert("hasSuffix", |_, a| {
        want(&a, 2, "hasSuffix")?;
        Ok(Value::Bool(s(&a[1]).ends_with(&s(&a[0]))))
    });
    m.insert("replace", |_, a| {
        want(&a, 3, "replace")?;
        Ok(Value::String(s(&a[2]).replace(&s(&a[0]), &s(&a[1]))))
    });
    m.insert("repeat", |_, a| {
        want(&a, 2, "repeat")?;
        let n = to_i64(&a[0]).clamp(0, 1 << 20) as usize;
        let t = s(&a[1]);
        if t.len().saturating_mul(n) > 16 << 20 {
            return Err("repeat: result larger than 16 MiB".into());
        }
        Ok(Value::String(t.repeat(n)))
    });
    m.insert("nospace", |_, a| {
        want(&a, 1, "nospace")?;
        Ok(Value::String(
            s(&a[0]).chars().filter(|c| !c.is_whitespace()).collect(),
        ))
    });
    m.insert("indent", |_, a| {
        want(&a, 2, "indent")?;
        Ok(Value::String(indent_by(to_i64(&a[0]), &s(&a[1]))))
    });
    m.insert("nindent", |_, a| {
        want(&a, 2, "nindent")?;
        Ok(Value::String(format!(
            "\n{}",
            indent_by(to_i64(&a[0]), &s(&a[1]))
        )))
    });
    m.insert("toString", |_, a| {
        want(&a, 1, "toString")?;
        Ok(Value::String(s(&a[0])))
    });
    m.insert("join", |_, a| {
        want(&a, 2, "join")?;
        let sep = s(&a[0]);
        let parts: Vec<String> = match &a[1] {
            Value::Array(x) => x.iter().map(s).collect(),
            other => vec![s(other)],
        };
        Ok(Value::String(parts.join(&sep)))
    });
    m.insert("split", |_, a| {
        want(&a, 2, "split")?;
        let (sep, t) = (s(&a[0]), s(&a[1]));
        let mut o = Map::new();
        for (i, p) in t.split(sep.as_str()).enumerate() {
            o.insert(format!("_{i}"), Value::String(p.to_string()));
        }
        Ok(Value::Object(o))
    });
    m.insert("splitList", |_, a| {
        want(&a, 2, "splitList")?;
        let (sep, t) = (s(&a[0]), s(&a[1]));
        Ok(Value::Array(
            t.split(sep.as_str())
                .map(|p| Value::String(p.into()))
                .collect(),
        ))
    });
    m.insert("b64enc", |_, a| {
        want(&a, 1, "b64enc")?;
        Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(s(&a[0])),
        ))
    });
    m.insert("b64dec", |_, a| {
        want(&a, 1, "b64dec")?;
        Ok(Value::String(
            base64::engine::general_purpose::STANDARD
                .decode(s(&a[0]))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| e.to_string()),
        ))
    });
    m.insert("sha256sum", |_, a| {
        want(&a, 1, "sha256sum")?;
        Ok(Value::String(canary_analyzer::hex(&sha2::Sha256::digest(
            s(&a[0]).as_bytes(),
        ))))
    });
    m.insert("regexMatch", |_, a| {
        want(&a, 2, "regexMatch")?;
        let re = regex::Regex::new(&s(&a[0])).map_err(|e| e.to_string())?;
        Ok(Value::Bool(re.is_match(&s(&a[1]))))
    });
    m.insert("regexReplaceAll", |_, a| {
        want(&a, 3, "regexReplaceAll")?;
        let re = regex::Regex::new(&s(&a[0])).map_err(|e| e.to_string())?;
        Ok(Value::String(
            re.replace_all(&s(&a[1]), s(&a[2]).as_str()).into_owned(),
        ))
    });
    // Numbers.
    m.insert("int", |_, a| {
        want(&a, 1, "int")?;
        Ok(Value::from(to_i64(&a[0])))
    });
    m.insert("int64", |_, a| {
        want(&a, 1, "int64")?;
        Ok(Value::from(to_i64(&a[0])))
    });
    m.insert("float64", |_, a| {
        want(&a, 1, "float64")?;
        Ok(float(to_f64(&a[0])))
    });
    m.insert("add", |_, a| {
        Ok(Value::from(
            a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
        ))
    });
    m.insert("add1", |_, a| {
        want(&a, 1, "add1")?;
        Ok(Value::from(to_i64(&a[0]).wrapping_add(1)))
    });
    m.insert("sub", |_, a| {
        want(&a, 2, "sub")?;
        Ok(Value::from(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
    });
    m.insert("mul", |_, a| {
        Ok(Value::from(
            a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
        ))
    });
    m.insert("div", |_, a| {
        want(&a, 2, "div")?;
        let d = to_i64(&a[1]);
        if d == 0 {
            return Err("integer divide by zero".into());
        }
        Ok(Value::from(to_i64(&a[0]).wrapping_div(d)))
    });
    m.insert("mod", |_, a| {
        want(&a, 2, "mod")?;
        let d = to_i64(&a[1]);
        if d == 0 {
            return Err("integer divide by zero".into());
        }
        Ok(Value::from(to_i64(&a[0]).wrapping_rem(d)))
    });
    m.insert("max", |_, a| {
        Ok(Value::from(a.iter().map(to_i64).max().unwrap_or(0)))
    });
    m.insert("min", |_, a| {
        Ok(Value::from(a.iter().map(to_i64).min().unwrap_or(0)))
    });
    // Lists.
    m.insert("list", |_, a| Ok(Value::Array(a)));
    m.insert("append", |_, a| {
        want(&a, 2, "append")?;
        let mut l = list_of(&a[0])?;
        l.push(a[1].clone());
        Ok(Value::Array(l))
    });
    m.insert("prepend", |_, a| {
        want(&a, 2, "prepend")?;
        let mut l = list_of(&a[0])?;
        l.insert(0, a[1].clone());
        Ok(Value::Array(l))
    });
    m.insert("first", |_, a| {
        want(&a, 1, "first")?;
        Ok(list_of(&a[0])?.into_iter().next().unwrap_or(Value::Null))
    });
    m.insert("last", |_, a| {
        want(&a, 1, "last")?;
        Ok(list_of(&a[0])?.pop().unwrap_or(Value::Null))
    });
    m.insert("uniq", |_, a| {
        want(&a, 1, "uniq")?;
        let mut out: Vec<Value> = Vec::new();
        for x in list_of(&a[0])? {
            if !out.contains(&x) {
                out.push(x);
            }
        }
        Ok(Value::Array(out))
    });
    m.insert("has", |_, a| {
        want(&a, 2, "has")?;
        Ok(Value::Bool(list_of(&a[1])?.contains(&a[0])))
    });
    m.insert("compact", |_, a| {
        want(&a, 1, "compact")?;
        Ok(Value::Array(
            list_of(&a[0])?.into_iter().filter(truthy).collect(),
        ))
    });
    m.insert("until", |_, a| {
        want(&a, 1, "until")?;
        let n = to_i64(&a[0]).clamp(0, 1 << 20);
        Ok(Value::Array((0..n).map(Value::from).collect()))
    });
    // Dicts.
    m.insert("dict", |_, a| {
        let mut o = Map::new();
        for pair in a.chunks(2) {
            o.insert(
                s(&pair[0]),
                pair.get(1).cloned().unwrap_or(Value::String(String::new())),
            );
        }
        Ok(Value::Object(o))
    });
    m.insert("get", |_, a| {
        want(&a, 2, "get")?;
        Ok(get_dict(&a[0], "get")?
            .get(&s(&a[1]))
            .cloned()
            .unwrap_or(Value::String(String::new())))
    });
    m.insert("set", |_, a| {
        want(&a, 3, "set")?;
        let mut d = get_dict(&a[0], "set")?;
        d.insert(s(&a[1]), a[2].clone());
        Ok(Value::Object(d))
    });
    m.insert("unset", |_, a| {
        want(&a, 2, "unset")?;
        let mut d = get_dict(&a[0], "unset")?;
        d.remove(&s(&a[1]));
        Ok(Value::Object(d))
    });
    m.insert("hasKey", |_, a| {
        want(&a, 2, "hasKey")?;
        Ok(Value::Bool(
            get_dict(&a[0], "hasKey")?.contains_key(&s(&a[1])),
        ))
    });
    m.insert("keys", |_, a| {
        let mut ks: Vec<Value> = Vec::new();
        for d in &a {
            ks.extend(
                get_dict(d, "keys")?
                    .keys()
                    .map(|k| Value::String(k.clone())),
            );
        }
        Ok(Value::Array(ks))
    });
    m.insert("values", |_, a| {
        want(&a, 1, "values")?;
        Ok(Value::Array(
            get_dict(&a[0], "values")?.values().cloned().collect(),
        ))
    });
    m.insert("pick", |_, a| {
        let Some((d, ks)) = a.split_first() else {
            return Err("pick needs a map".into());
        };
        let d = get_dict(d, "pick")?;
        let ks: Vec<String> = ks.iter().map(s).collect();
        Ok(Value::Object(
            d.into_iter().filter(|(k, _)| ks.contains(k)).collect(),
        ))
    });
    m.insert("omit", |_, a| {
        let Some((d, ks)) = a.split_first() else {
            return Err("omit needs a map".into());
        };
        let d = get_dict(d, "omit")?;
        let ks: Vec<String> = ks.iter().map(s).collect();
        Ok(Value::Object(
            d.into_iter().filter(|(k, _)| !ks.contains(k)).collect(),
        ))
    });
    m.insert("merge", |_, a| {
        let Some((first, rest)) = a.split_first() else {
            return Err("merge needs a map".into());
        };
        let mut d = get_dict(first, "merge")?;
        for r in rest {
            deep_merge(&mut d, &get_dict(r, "merge")?, false);
        }
        Ok(Value::Object(d))
    });
    m.insert("mergeOverwrite", |_, a| {
        let Some((first, rest)) = a.split_first() else {
            return Err("mergeOverwrite needs a map".into());
        };
        let mut d = get_dict(first, "mergeOverwrite")?;
        for r in rest {
            deep_merge(&mut d, &get_dict(r, "mergeOverwrite")?, true);
        }
        Ok(Value::Object(d))
    });
    m.insert("deepCopy", |_, a| {
        want(&a, 1, "deepCopy")?;
        Ok(a[0].clone())
    });
    m.insert("kindIs", |_, a| {
        want(&a, 2, "kindIs")?;
        Ok(Value::Bool(kind(&a[1]) == s(&a[0])))
    });
    m.insert("kindOf", |_, a| {
        want(&a, 1, "kindOf")?;
        Ok(Value::String(kind(&a[0]).into()))
    });
    m.insert("typeOf", |_, a| {
        want(&a, 1, "typeOf")?;
        Ok(Value::String(type_name(&a[0]).into()))
    });
    m.insert("sortAlpha", |_, a| {
        want(&a, 1, "sortAlpha")?;
        let mut l: Vec<String> = list_of(&a[0])?.iter().map(s).collect();
        l.sort();
        Ok(Value::Array(l.into_iter().map(Value::String).collect()))
    });
    m.insert("reverse", |_, a| {
        want(&a, 1, "reverse")?;
        let mut l = list_of(&a[0])?;
        l.reverse();
        Ok(Value::Array(l))
    });
    m.insert("without", |_, a| {
        let Some((l, drop)) = a.split_first() else {
            return Err("without needs a list".into());
        };
        Ok(Value::Array(
            list_of(l)?
                .into_iter()
                .filter(|x| !drop.contains(x))
                .collect(),
        ))
    });
    m.insert("rest", |_, a| {
        want(&a, 1, "rest")?;
        Ok(Value::Array(list_of(&a[0])?.into_iter().skip(1).collect()))
    });
    m.insert("initial", |_, a| {
        want(&a, 1, "initial")?;
        let mut l = list_of(&a[0])?;
        l.pop();
        Ok(Value::Array(l))
    });
    m.insert("concat", |_, a| {
        let mut out = Vec::new();
        for l in &a {
            out.extend(list_of(l)?);
        }
        Ok(Value::Array(out))
    });
    m.insert("substr", |_, a| {
        want(&a, 3, "substr")?;
        let t = s(&a[2]);
        let len = t.len() as i64;
        let start = to_i64(&a[0]).max(0);
        let mut end = to_i64(&a[1]);
        if end < 0 || end > len {
            end = len;
        }
        if start > end {
            return Ok(Value::String(String::new()));
        }
        Ok(Value::String(
            t.get(start as usize..end as usize)
                .unwrap_or("")
                .to_string(),
        ))
    });
    m.insert("cat", |_, a| {
        let parts: Vec<String> = a.iter().filter(|x| !x.is_null()).map(s).collect();
        Ok(Value::String(parts.join(" ")))
    });
    m.insert("base", |_, a| {
        want(&a, 1, "base")?;
        let t = s(&a[0]);
        let t = t.trim_end_matches('/');
        Ok(Value::String(if t.is_empty() {
            "/".into()
        } else {
            t.rsplit('/').next().unwrap_or(t).to_string()
        }))
    });
    m.insert("dir", |_, a| {
        want(&a, 1, "dir")?;
        let t = s(&a[0]);
        Ok(Value::String(match t.rfind('/') {
            Some(0) => "/".into(),
            Some(i) => t[..i].to_string(),
            None => ".".into(),
        }))
    });
    m.insert("ext", |_, a| {
        want(&a, 1, "ext")?;
        let t = s(&a[0]);
        let base = t.rsplit('/').next().unwrap_or(&t);
        Ok(Value::String(
            base.rfind('.')
                .map(|i| base[i..].to_string())
                .unwrap_or_default(),
        ))
    });
    m.insert("sha1sum", |_, a| {
        want(&a, 1, "sha1sum")?;
        Ok(Value::String(canary_analyzer::hex(&sha1::Sha1::digest(
            s(&a[0]).as_bytes(),
        ))))
    });
    m.insert("toPrettyJson", |_, a| {
        want(&a, 1, "toPrettyJson")?;
        Ok(Value::String(go_pretty_json(&a[0], 0)))
    });
    m.insert("dig", |_, a| {
        if a.len() < 3 {
            return Err("dig needs keys, a default and a map".into());
        }
        let (dict, rest) = a.split_last().expect("length checked");
        let (default, keys) = rest.split_last().expect("length checked");
        let mut cur = dict.clone();
        for k in keys {
            match cur.get(s(k)) {
                Some(v) => cur = v.clone(),
                None => return Ok(default.clone()),
            }
        }
        Ok(cur)
    });
    m.insert("pluck", |_, a| {
        let Some((k, dicts)) = a.split_first() else {
            return Err("pluck needs a key".into());
        };
        let k = s(k);
        Ok(Value::Array(
            dicts.iter().filter_map(|d| d.get(&k).cloned()).collect(),
        ))
    });
    m.insert("semverCompare", |_, a| {
        want(&a, 2, "semverCompare")?;
        semver_check(&s(&a[0]), &s(&a[1])).map(Value::Bool)
    });
    m.insert("toStrings", |_, a| {
        want(&a, 1, "toStrings")?;
        Ok(Value::Array(
            list_of(&a[0])?
                .iter()
                .map(|x| Value::String(s(x)))
                .collect(),
        ))
    });
    m.insert("snakecase", |_, a| {
        want(&a, 1, "snakecase")?;
        Ok(Value::String(case_words(&s(&a[0])).join("_")))
    });
    m.insert("kebabcase", |_, a| {
        want(&a, 1, "kebabcase")?;
        Ok(Value::String(case_words(&s(&a[0])).join("-")))
    });
    m.insert("regexFind", |_, a| {
        want(&a, 2, "regexFind")?;
        let re = regex::Regex::new(&s(&a[0])).map_err(|e| e.to_string())?;
        Ok(Value::String(
            re.find(&s(&a[1]))
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
        ))
    });
    m.insert("regexFindAll", |_, a| {
        want(&a, 3, "regexFindAll")?;
        let re = regex::Regex::new(&s(&a[0])).map_err(|e| e.to_string())?;
        let n = to_i64(&a[2]);
        let t = s(&a[1]);
        let all = re
            .find_iter(&t)
            .map(|m| Value::String(m.as_str().to_string()));
        Ok(Value::Array(if n < 0 {
            all.collect()
        } else {
            all.take(n as usize).collect()
        }))
    });
    m.insert("plural", |_, a| {
        want(&a, 3, "plural")?;
        Ok(if to_i64(&a[2]) == 1 {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    // Helm.
    m.insert("include", |x: &mut Exec<'_>, a| {
        want(&a, 2, "include")?;
        let name = s(&a[0]);
        x.call_template(&name, a[1].clone(), 0)
            .map(Value::String)
            .map_err(|e| e.to_string())
    });
    m.insert("tpl", |x: &mut Exec<'_>, a| {
        want(&a, 2, "tpl")?;
        let name = format!("{}(tpl)", x.name);
        x.run_inline(&name, &s(&a[0]), a[1].clone())
            .map(|t| Value::String(t.replace("<no value>", "")))
    });
    m.insert("toJson", |_, a| {
        want(&a, 1, "toJson")?;
        Ok(Value::String(go_json(&a[0])))
    });
    m.insert("toYaml", |_, a| {
        want(&a, 1, "toYaml")?;
        Ok(Value::String(
            super::yaml::to_yaml(&a[0])
                .trim_end_matches('\n')
                .to_string(),
        ))
    });
    m.insert("fromYaml", |_, a| {
        want(&a, 1, "fromYaml")?;
        Ok(match super::yaml::from_yaml(&s(&a[0])) {
            Ok(Value::Object(o)) => Value::Object(o),
            Ok(_) => Value::Object(Map::new()),
            Err(e) => Value::Object(Map::from_iter([("Error".to_string(), Value::String(e))])),
        })
    });
    m.insert("fromJson", |_, a| {
        want(&a, 1, "fromJson")?;
        Ok(
            serde_json::from_str(&s(&a[0])).unwrap_or_else(|e: serde_json::Error| {
                Value::Object(Map::from_iter([(
                    "Error".to_string(),
                    Value::String(e.to_string()),
                )]))
            }),
        )
    });
    m.insert("lookup", |_, _a| Ok(Value::Object(Map::new())));
    super::more::add(&mut m);
    super::crypto::add(&mut m);
    m
}

/// `strconv.Quote`: Go's double-quoted string with its escapes.
pub fn go_quote(t: &str) -> String {
    let mut out = String::with_capacity(t.len() + 2);
    out.push('"');
    for c in t.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// Words of a camelCase / snake_case / kebab-case name, lower-cased.
fn case_words(t: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = t.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c == ' ' {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_uppercase()
            && !cur.is_empty()
            && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()))
        {
            words.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// `json.MarshalIndent(v, "", "  ")`.
fn go_pretty_json(v: &Value, indent: usize) -> String {
    let pad = "  ".repeat(indent + 1);
    let end = "  ".repeat(indent);
    match v {
        Value::Array(a) if !a.is_empty() => {
            let parts: Vec<String> = a
                .iter()
                .map(|x| format!("{pad}{}", go_pretty_json(x, indent + 1)))
                .collect();
            format!("[\n{}\n{end}]", parts.join(",\n"))
        }
        Value::Object(o) if !o.is_empty() => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{pad}{}: {}",
                        go_json(&Value::String((*k).clone())),
                        go_pretty_json(&o[k.as_str()], indent + 1)
                    )
                })
                .collect();
            format!("{{\n{}\n{end}}}", parts.join(",\n"))
        }
        other => go_json(other),
    }
}

/// `(major, minor, patch, prerelease)` of a semantic version (`v` prefix allowed; a
/// missing minor or patch is 0, as Masterminds/semver reads them).
pub(crate) fn parse_semver(t: &str) -> Option<(u64, u64, u64, String)> {
    let t = t.trim().trim_start_matches(['v', 'V']);
    let t = t.split('+').next()?;
    let (core, pre) = match t.split_once('-') {
        Some((c, p)) => (c, p.to_string()),
        None => (t, String::new()),
    };
    let mut it = core.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = match it.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    let patch = match it.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    if it.next().is_some() {
        return None;
    }
    Some((major, minor, patch, pre))
}

pub(crate) fn semver_cmp(
    a: &(u64, u64, u64, String),
    b: &(u64, u64, u64, String),
) -> std::cmp::Ordering {
    (a.0, a.1, a.2)
        .cmp(&(b.0, b.1, b.2))
        .then_with(|| match (a.3.is_empty(), b.3.is_empty()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => a.3.cmp(&b.3),
        })
}

/// Whether a dependency's version names one release (`1.2.3`, `v1.2.3-rc.1`), not a
/// range or wildcard.
pub fn is_exact_version(v: &str) -> bool {
    let t = v.trim().trim_start_matches('=').trim();
    let core = t.trim_start_matches(['v', 'V']);
    core.split(['-', '+']).next().is_some_and(|c| {
        let parts: Vec<&str> = c.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }) && !t.contains([' ', ',', '|', '<', '>', '~', '^', '*'])
}

/// Masterminds/semver constraints as charts write them: `||` between alternatives,
/// terms separated by spaces or commas, operators `= != > < >= <= ~ ^`; a version with
/// a prerelease only satisfies terms that carry one (`>=1.19-0`); wildcards (`*`, `1.x`,
/// `1.2.X`) match any value in their place.
pub(crate) fn semver_check(constraint: &str, version: &str) -> Result<bool, String> {
    let v = parse_semver(version).ok_or_else(|| format!("invalid semantic version {version:?}"))?;
    'alternatives: for alt in constraint.split("||") {
        let spaced = alt.replace(',', " ");
        let mut toks = spaced.split_whitespace();
        let mut any = false;
        while let Some(first) = toks.next() {
            let mut t = first.to_string();
            // `>= 1.2`, written with a space.
            if t.chars().all(|c| "<>=!~^".contains(c))
                && let Some(n) = toks.next()
            {
                t.push_str(n);
            }
            any = true;
            let op_len = t.chars().take_while(|c| "<>=!~^".contains(*c)).count();
            let (op, ver) = t.split_at(op_len);
            let wild = |p: &str| matches!(p, "x" | "X" | "*");
            let parts: Vec<&str> = ver.trim_start_matches(['v', 'V']).split('.').collect();
            if let Some(w) = parts.iter().position(|p| wild(p)) {
                // `1.x` is `1` with the rest free: compare only what is given.
                let given: Vec<u64> = parts[..w].iter().filter_map(|p| p.parse().ok()).collect();
                if given.len() != w || !matches!(op, "" | "=") {
                    return Err(format!("improper constraint: {t}"));
                }
                let have = [v.0, v.1, v.2];
                if !v.3.is_empty() || have[..w] != given[..] {
                    continue 'alternatives;
                }
                continue;
            }
            let c = parse_semver(ver).ok_or_else(|| format!("improper constraint: {t}"))?;
            if !v.3.is_empty() && c.3.is_empty() {
                continue 'alternatives;
            }
            let ord = semver_cmp(&v, &c);
            let minor_given = ver.trim_start_matches(['v', 'V']).split('.').count() >= 2;
            let ok = match op {
                "" | "=" => ord.is_eq(),
                "!=" => !ord.is_eq(),
                ">" => ord.is_gt(),
                "<" => ord.is_lt(),
                ">=" | "=>" => ord.is_ge(),
                "<=" | "=<" => ord.is_le(),
                "~" => ord.is_ge() && v.0 == c.0 && (!minor_given || v.1 == c.1),
                "^" => {
                    ord.is_ge()
                        && if c.0 > 0 {
                            v.0 == c.0
                        } else if c.1 > 0 {
                            v.0 == 0 && v.1 == c.1
                        } else {
                            v.0 == 0 && v.1 == 0 && v.2 == c.2
                        }
                }
                _ => return Err(format!("improper constraint: {t}")),
            };
            if !ok {
                continue 'alternatives;
            }
        }
        if any {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `encoding/json.Marshal` as Go does it: keys sorted, `<>&` escaped, floats in Go's
/// JSON form.
pub fn go_json(v: &Value) -> String {
    json_with(v, true)
}

/// `encoding/json` with or without escaping `<>&` (`toRawJson` keeps them).
pub(super) fn json_with(v: &Value, escape_html: bool) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => go_json_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(x) => {
            let j = serde_json::to_string(x).unwrap_or_default();
            if !escape_html {
                return j;
            }
            j.replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026")
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| json_with(x, escape_html))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        json_with(&Value::String((*k).clone()), escape_html),
                        json_with(&o[k.as_str()], escape_html)
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    }
}

/// A float as `encoding/json` writes it: plain decimals unless tiny or huge.
pub fn go_json_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let t = go_float(f);
        // Go's JSON writes e-07 as e-7.
        return t.replace("e-0", "e-").replace("e+0", "e+");
    }
    if f.fract() == 0.0 && a < 1e21 {
        return format!("{f:.0}");
    }
    let t = format!("{f}");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_like_go() {
        let v = |x: serde_json::Value| x;
        assert_eq!(sprintf("%s-%d", &[v("a".into()), v(3.into())]), "a-3");
        assert_eq!(
            sprintf(
                "%05d|%-4s|%4s",
                &[v(42.into()), v("ab".into()), v("ab".into())]
            ),
            "00042|ab  |  ab"
        );
        assert_eq!(
            sprintf(
                "%q %v %t",
                &[
                    v("x\"y".into()),
                    v(serde_json::json!([1, 2])),
                    v(true.into())
                ]
            ),
            "\"x\\\"y\" [1 2] true"
        );
        assert_eq!(sprintf("%d", &[v("x".into())]), "%!d(string=x)");
        assert_eq!(sprintf("%s", &[]), "%!s(MISSING)");
        assert_eq!(sprintf("%.2f%%", &[v(1.005.into())]), "1.00%");
    }

    #[test]
    fn json_like_go() {
        let j = serde_json::json!({"b": 1, "a": "<&>", "c": [1.5, 1e21, 3.0]});
        assert_eq!(
            go_json(&j),
            r#"{"a":"\u003c\u0026\u003e","b":1,"c":[1.5,1e+21,3]}"#
        );
    }
}
