//! Executing parsed templates over JSON-shaped data, with Go `text/template` semantics:
//! truthiness, field access on maps, variables scoped to their block, `range` over lists
//! and maps (keys sorted), `with`, `template`, and the built-in functions; function calls
//! take the previous command's value as their last argument.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::parse::{Arg, Command, Node, Pipe};

/// An execution error with the template name and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {name}:{line}: {message}")]
pub struct ExecError {
    pub name: String,
    pub line: usize,
    pub message: String,
}

/// Limits that keep a hostile template from running forever or filling memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `template`/`include`/`tpl` nesting.
    pub max_depth: usize,
    /// Bytes of output per render.
    pub max_output: usize,
    /// Loop iterations and function calls per render.
    pub max_steps: u64,
    /// Steps of all the renders of one engine together (one chart's templates).
    pub max_total_steps: u64,
    /// Bytes of output of all the renders of one engine together.
    pub max_total_output: usize,
    /// Wall-clock time for all the renders of one engine, from the first.
    pub deadline: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 100,
            max_output: 64 << 20,
            max_steps: 50_000_000,
            max_total_steps: 200_000_000,
            max_total_output: 256 << 20,
            deadline: Some(Duration::from_secs(60)),
        }
    }
}

/// What every render of one engine shares: the chart-wide budgets, the clock, and the
/// values made at random during the renders (`randAlphaNum`, generated keys and
/// certificates), which are not the chart's secrets.
#[derive(Debug, Default)]
pub struct Shared {
    steps: Cell<u64>,
    output: Cell<usize>,
    started: Cell<Option<Instant>>,
    generated: RefCell<Vec<String>>,
    generated_bytes: Cell<usize>,
}

impl Shared {
    pub(super) fn take_generated(&self) -> Vec<String> {
        std::mem::take(&mut self.generated.borrow_mut())
    }
}

/// A function: arguments already evaluated.
pub type Func = fn(&mut Exec<'_>, Vec<Value>) -> Result<Value, String>;

/// A method call on a value (`.Files.Get "x"`, `.Capabilities.APIVersions.Has "v1"`):
/// receiver, method name, arguments; `None` when the receiver has no such method.
pub type Method = fn(&Value, &str, &[Value]) -> Option<Result<Value, String>>;

/// Templates by name, the functions, and the limits: what a render runs against.
pub struct Engine {
    pub templates: HashMap<String, Vec<Node>>,
    pub funcs: HashMap<&'static str, Func>,
    pub limits: Limits,
    pub methods: Option<Method>,
    pub shared: Shared,
}

/// One render in progress.
pub struct Exec<'e> {
    pub engine: &'e Engine,
    /// Name of the template being executed (for errors and `.Template.Name`).
    pub name: String,
    depth: usize,
    steps: u64,
    out_len: usize,
    /// Extra templates parsed during the render (by `tpl`).
    pub extra: HashMap<String, Vec<Node>>,
    /// Whether `.` is the current template's `$` (outside `with` and `range`): then `.`
    /// is read from `$`'s slot, so `set`/`unset`/`merge` on it are seen afterwards.
    dot_root: bool,
}

/// Functions that change their first argument (a dict) in place in Go, where maps are
/// references: the result is written back to the variable or field it came from.
const MUTATORS: [&str; 6] = [
    "set",
    "unset",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
];

enum Flow {
    Normal,
    Break,
    Continue,
}

/// Put `new` at `chain` below `root`, where that place holds a dict (what a Go map
/// reference would have changed).
fn write_at(root: &mut Value, chain: &[String], new: &Value) {
    let mut cur = root;
    for f in chain {
        match cur.get_mut(f.as_str()) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if cur.is_object() && new.is_object() {
        *cur = new.clone();
    }
}

/// Go's notion of an empty value: false, 0, nil, "", empty list or map.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A float as Go's `%v` prints it (`strconv.FormatFloat(f, 'g', -1, 64)`).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Shortest round-tripping digits, from Rust's `{:e}` (e.g. "1.2345e6").
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let es = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{es}{:02}", exp.abs());
    }
    if exp >= 0 {
        let point = exp as usize + 1;
        if digits.len() <= point {
            format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

/// A value as Go's `fmt` `%v` prints it; nil as `<no value>` (Helm then removes those).
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => go_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(inner_text).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", inner_text(&o[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Inside a list or map, nil prints as `<nil>`.
fn inner_text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => to_text(other),
    }
}

impl Engine {
    /// Render template `name` with `data` as the dot.
    pub fn render(&self, name: &str, data: &Value) -> Result<String, ExecError> {
        if self.shared.started.get().is_none() {
            self.shared.started.set(Some(Instant::now()));
        }
        let mut x = Exec {
            engine: self,
            name: name.to_string(),
            depth: 0,
            steps: 0,
            out_len: 0,
            extra: HashMap::new(),
            dot_root: true,
        };
        x.call_template(name, data.clone(), 0)
    }
}

impl Exec<'_> {
    fn err(&self, line: usize, m: impl Into<String>) -> ExecError {
        ExecError {
            name: self.name.clone(),
            line,
            message: m.into(),
        }
    }

    fn lookup_template(&self, name: &str) -> Option<Vec<Node>> {
        self.extra
            .get(name)
            .or_else(|| self.engine.templates.get(name))
            .cloned()
    }

    /// Execute a named template with `dot`, returning its text (what `include` does).
    pub fn call_template(
        &mut self,
        name: &str,
        dot: Value,
        line: usize,
    ) -> Result<String, ExecError> {
        self.step(line)?;
        let Some(body) = self.lookup_template(name) else {
            return Err(self.err(
                line,
                format!(
                    "no template {name:?} associated with template {:?}",
                    self.name
                ),
            ));
        };
        if self.depth >= self.engine.limits.max_depth {
            return Err(self.err(
                line,
                format!(
                    "rendering template {name:?} nested more than {} deep (recursion?)",
                    self.engine.limits.max_depth
                ),
            ));
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.name, name.to_string());
        let saved_root = std::mem::replace(&mut self.dot_root, true);
        let mut out = String::new();
        // `.` is read from `$`'s slot while `dot_root` holds.
        let mut vars = vec![("$".to_string(), dot)];
        let r = self.walk(&body, &Value::Null, &mut vars, &mut out);
        self.name = saved;
        self.dot_root = saved_root;
        self.depth -= 1;
        r.map(|_| out)
    }

    fn step(&mut self, line: usize) -> Result<(), ExecError> {
        self.steps += 1;
        let limits = &self.engine.limits;
        if self.steps > limits.max_steps {
            return Err(self.err(
                line,
                format!("more than {} steps: stopped", limits.max_steps),
            ));
        }
        let shared = &self.engine.shared;
        let total = shared.steps.get() + 1;
        shared.steps.set(total);
        if total > limits.max_total_steps {
            return Err(self.err(
                line,
                format!(
                    "more than {} steps in the chart's templates together: stopped",
                    limits.max_total_steps
                ),
            ));
        }
        if total.is_multiple_of(4096)
            && let (Some(limit), Some(started)) = (limits.deadline, shared.started.get())
            && started.elapsed() > limit
        {
            return Err(self.err(
                line,
                format!(
                    "the chart's templates took longer than {} s to render: stopped",
                    limit.as_secs()
                ),
            ));
        }
        Ok(())
    }

    /// Record a value made at random (or a generated key), so a scan of the output
    /// does not take it for a secret the chart holds. Short values are not recorded,
    /// nor any past 100,000 values or 64 MiB.
    pub fn generated(&mut self, value: &str) {
        let shared = &self.engine.shared;
        let bytes = shared.generated_bytes.get() + value.len();
        if value.len() >= 8 && bytes <= 64 << 20 {
            let mut g = shared.generated.borrow_mut();
            if g.len() < 100_000 {
                g.push(value.to_string());
                shared.generated_bytes.set(bytes);
            }
        }
    }

    /// For functions that take long per call (key generation, bcrypt): the render's
    /// clock is checked now, not only every few thousand steps.
    pub fn expensive(&mut self) -> Result<(), String> {
        if let (Some(limit), Some(started)) = (
            self.engine.limits.deadline,
            self.engine.shared.started.get(),
        ) && started.elapsed() > limit
        {
            return Err(format!(
                "the chart's templates took longer than {} s to render: stopped",
                limit.as_secs()
            ));
        }
        Ok(())
    }

    fn emit(&mut self, out: &mut String, s: &str, line: usize) -> Result<(), ExecError> {
        self.out_len += s.len();
        if self.out_len > self.engine.limits.max_output {
            return Err(self.err(
                line,
                format!("output larger than {} bytes", self.engine.limits.max_output),
            ));
        }
        let total = self.engine.shared.output.get() + s.len();
        self.engine.shared.output.set(total);
        if total > self.engine.limits.max_total_output {
            return Err(self.err(
                line,
                format!(
                    "the chart's templates wrote more than {} bytes together",
                    self.engine.limits.max_total_output
                ),
            ));
        }
        out.push_str(s);
        Ok(())
    }

    fn walk(
        &mut self,
        nodes: &[Node],
        dot: &Value,
        vars: &mut Vec<(String, Value)>,
        out: &mut String,
    ) -> Result<Flow, ExecError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.emit(out, t, 0)?,
                Node::Action(p) => {
                    let v = self.pipe(p, dot, vars)?;
                    if p.decls.is_empty() {
                        self.emit(out, &to_text(&v), p.line)?;
                    }
                }
                Node::If { pipe, then, els } => {
                    let mark = vars.len();
                    let v = self.pipe(pipe, dot, vars)?;
                    let f = if truthy(&v) {
                        self.walk(then, dot, vars, out)?
                    } else {
                        self.walk(els, dot, vars, out)?
                    };
                    vars.truncate(mark);
                    if !matches!(f, Flow::Normal) {
                        return Ok(f);
                    }
                }
                Node::With { pipe, body, els } => {
                    let mark = vars.len();
                    let v = self.pipe(pipe, dot, vars)?;
                    let f = if truthy(&v) {
                        let saved = std::mem::replace(&mut self.dot_root, false);
                        let r = self.walk(body, &v, vars, out);
                        self.dot_root = saved;
                        r?
                    } else {
                        self.walk(els, dot, vars, out)?
                    };
                    vars.truncate(mark);
                    if !matches!(f, Flow::Normal) {
                        return Ok(f);
                    }
                }
                Node::Range { pipe, body, els } => {
                    let mark = vars.len();
                    let mut inner = pipe.clone();
                    let decls = std::mem::take(&mut inner.decls);
                    let v = self.pipe(&inner, dot, vars)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::from(i as i64), x.clone()))
                            .collect(),
                        Value::Object(o) => {
                            let mut keys: Vec<&String> = o.keys().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| (Value::String(k.clone()), o[k.as_str()].clone()))
                                .collect()
                        }
                        Value::Number(n) if n.as_i64().is_some() => {
                            let count = n.as_i64().unwrap_or(0).max(0);
                            // Each iteration is a step: a count past the budget stops here,
                            // before anything is built.
                            if count as u64
                                > self.engine.limits.max_steps.saturating_sub(self.steps)
                            {
                                return Err(self.err(
                                    pipe.line,
                                    format!(
                                        "range over {count}: more than the {} steps allowed",
                                        self.engine.limits.max_steps
                                    ),
                                ));
                            }
                            (0..count)
                                .map(|i| (Value::from(i), Value::from(i)))
                                .collect()
                        }
                        Value::Null => vec![],
                        other => {
                            return Err(self.err(
                                pipe.line,
                                format!("range can't iterate over a {}", type_name(other)),
                            ));
                        }
                    };
                    if items.is_empty() {
                        let f = self.walk(els, dot, vars, out)?;
                        vars.truncate(mark);
                        if !matches!(f, Flow::Normal) {
                            return Ok(f);
                        }
                        continue;
                    }
                    for (k, x) in items {
                        self.step(pipe.line)?;
                        let m = vars.len();
                        match decls.len() {
                            1 => vars.push((decls[0].clone(), x.clone())),
                            2 => {
                                vars.push((decls[0].clone(), k));
                                vars.push((decls[1].clone(), x.clone()));
                            }
                            _ => {}
                        }
                        let saved = std::mem::replace(&mut self.dot_root, false);
                        let f = self.walk(body, &x, vars, out);
                        self.dot_root = saved;
                        let f = f?;
                        vars.truncate(m);
                        if matches!(f, Flow::Break) {
                            break;
                        }
                    }
                    vars.truncate(mark);
                }
                Node::Template { name, pipe, line } => {
                    let v = match pipe {
                        Some(p) => self.pipe(p, dot, vars)?,
                        None => Value::Null,
                    };
                    let s = self.call_template(name, v, *line)?;
                    // The callee's output was counted already.
                    self.out_len -= s.len().min(self.out_len);
                    self.emit(out, &s, *line)?;
                }
                Node::Break(_) => return Ok(Flow::Break),
                Node::Continue(_) => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn pipe(
        &mut self,
        p: &Pipe,
        dot: &Value,
        vars: &mut Vec<(String, Value)>,
    ) -> Result<Value, ExecError> {
        let mut prev: Option<Value> = None;
        for c in &p.cmds {
            prev = Some(self.command(c, dot, vars, prev, p.line)?);
        }
        let v = prev.unwrap_or(Value::Null);
        for d in &p.decls {
            if p.assign {
                match vars.iter_mut().rev().find(|(n, _)| n == d) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(self.err(p.line, format!("undefined variable: {d}"))),
                }
            } else {
                vars.push((d.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    /// `.`: the value given, or `$`'s slot at a template's top level.
    fn dot_of<'a>(&self, dot: &'a Value, vars: &'a [(String, Value)]) -> &'a Value {
        match vars.first() {
            Some((_, v)) if self.dot_root => v,
            _ => dot,
        }
    }

    /// The value at `chain` below `v`, walking by reference and copying only the result.
    fn fields(&self, v: &Value, chain: &[String], line: usize) -> Result<Value, ExecError> {
        let mut cur = v;
        for (i, f) in chain.iter().enumerate() {
            cur = match cur {
                Value::Object(o) => match o.get(f) {
                    Some(x) => x,
                    // A method without arguments (`(.Files.Glob "x").AsConfig`).
                    None => {
                        let r = match self.engine.methods.and_then(|m| m(cur, f, &[])) {
                            Some(r) => {
                                r.map_err(|e| self.err(line, format!("error calling {f}: {e}")))?
                            }
                            None => Value::Null,
                        };
                        return self.fields(&r, &chain[i + 1..], line);
                    }
                },
                // As Go: a field of a missing value is an error (`.Values.a.b` without `a`).
                Value::Null => {
                    return Err(
                        self.err(line, format!("nil pointer evaluating interface {{}}.{f}"))
                    );
                }
                other => {
                    return Err(self.err(
                        line,
                        format!("can't evaluate field {f} in type {}", type_name(other)),
                    ));
                }
            };
        }
        Ok(cur.clone())
    }

    /// Where a mutating function's first argument lives: a variable's slot and the
    /// field chain below it.
    fn place(&self, a: &Arg, vars: &[(String, Value)]) -> Option<(usize, Vec<String>)> {
        match a {
            Arg::Var(n, chain) => vars
                .iter()
                .rposition(|(name, _)| name == n)
                .map(|i| (i, chain.clone())),
            Arg::Dot if self.dot_root && !vars.is_empty() => Some((0, vec![])),
            Arg::Field(chain) if self.dot_root && !vars.is_empty() => Some((0, chain.clone())),
            _ => None,
        }
    }

    fn arg(
        &mut self,
        a: &Arg,
        dot: &Value,
        vars: &mut Vec<(String, Value)>,
        line: usize,
    ) -> Result<Value, ExecError> {
        Ok(match a {
            Arg::Dot => self.dot_of(dot, vars).clone(),
            Arg::Field(chain) => self.fields(self.dot_of(dot, vars), chain, line)?,
            Arg::Var(n, chain) => match vars.iter().rev().find(|(name, _)| name == n) {
                Some((_, v)) => self.fields(v, chain, line)?,
                None => return Err(self.err(line, format!("undefined variable: {n}"))),
            },
            Arg::Str(s) => Value::String(s.clone()),
            Arg::Int(i) => Value::from(*i),
            Arg::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Null,
            Arg::Sub(p, chain) => {
                let mark = vars.len();
                let v = self.pipe(p, dot, vars)?;
                vars.truncate(mark);
                self.fields(&v, chain, line)?
            }
            Arg::Ident(f) => self.call(f, vec![], line)?,
        })
    }

    fn command(
        &mut self,
        c: &Command,
        dot: &Value,
        vars: &mut Vec<(String, Value)>,
        prev: Option<Value>,
        line: usize,
    ) -> Result<Value, ExecError> {
        match &c.args[0] {
            Arg::Ident(f) => {
                // `and`/`or` evaluate their arguments lazily, as Go 1.18+ does.
                if f == "and" || f == "or" {
                    let mut last = Value::Null;
                    let n = c.args.len() - 1 + usize::from(prev.is_some());
                    if n == 0 {
                        return Err(self.err(
                            line,
                            format!("wrong number of args for {f}: want at least 1 got 0"),
                        ));
                    }
                    for a in &c.args[1..] {
                        last = self.arg(a, dot, vars, line)?;
                        if truthy(&last) == (f == "or") {
                            return Ok(last);
                        }
                    }
                    if let Some(p) = prev {
                        last = p;
                    }
                    return Ok(last);
                }
                let mut args = Vec::with_capacity(c.args.len());
                for a in &c.args[1..] {
                    args.push(self.arg(a, dot, vars, line)?);
                }
                if let Some(p) = prev {
                    args.push(p);
                }
                let place = if MUTATORS.contains(&f.as_str()) {
                    c.args.get(1).and_then(|a| self.place(a, vars))
                } else {
                    None
                };
                let r = self.call(f, args, line)?;
                if let Some((slot, chain)) = place {
                    write_at(&mut vars[slot].1, &chain, &r);
                }
                Ok(r)
            }
            first => {
                if c.args.len() > 1 || prev.is_some() {
                    // `.a.b.Method args…`: a method of the value at `.a.b`.
                    let (receiver, method) = match first {
                        Arg::Field(chain) if !chain.is_empty() => (
                            self.fields(self.dot_of(dot, vars), &chain[..chain.len() - 1], line)?,
                            chain[chain.len() - 1].clone(),
                        ),
                        Arg::Var(n, chain) if !chain.is_empty() => {
                            let Some((_, v)) = vars.iter().rev().find(|(name, _)| name == n) else {
                                return Err(self.err(line, format!("undefined variable: {n}")));
                            };
                            (
                                self.fields(v, &chain[..chain.len() - 1], line)?,
                                chain[chain.len() - 1].clone(),
                            )
                        }
                        _ => {
                            return Err(self.err(
                                line,
                                format!("can't give argument to non-function {first:?}"),
                            ));
                        }
                    };
                    let mut args = Vec::new();
                    for a in &c.args[1..] {
                        args.push(self.arg(a, dot, vars, line)?);
                    }
                    if let Some(p) = prev {
                        args.push(p);
                    }
                    return match self
                        .engine
                        .methods
                        .and_then(|m| m(&receiver, &method, &args))
                    {
                        Some(r) => {
                            r.map_err(|e| self.err(line, format!("error calling {method}: {e}")))
                        }
                        None => Err(self.err(
                            line,
                            format!("{method} is not a method of type {}", type_name(&receiver)),
                        )),
                    };
                }
                self.arg(first, dot, vars, line)
            }
        }
    }

    fn call(&mut self, f: &str, args: Vec<Value>, line: usize) -> Result<Value, ExecError> {
        self.step(line)?;
        let Some(func) = self.engine.funcs.get(f).copied() else {
            return Err(self.err(line, format!("function {f:?} not defined")));
        };
        // Errors from nested renders (include, tpl) keep their own place.
        let v = func(self, args).map_err(|m| {
            if m.starts_with("template ") {
                ExecError {
                    name: String::new(),
                    line: 0,
                    message: m,
                }
            } else {
                self.err(line, format!("error calling {f}: {m}"))
            }
        })?;
        // No value may grow past the output budget (`$s = print $s $s` doubling).
        let size = match &v {
            Value::String(s) => s.len(),
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        };
        if size > self.engine.limits.max_output {
            return Err(self.err(
                line,
                format!(
                    "{f} made a value larger than {} bytes",
                    self.engine.limits.max_output
                ),
            ));
        }
        Ok(v)
    }

    /// Parse and run `src` as a template named `name` with `dot` (Helm's `tpl`).
    pub fn run_inline(&mut self, name: &str, src: &str, dot: Value) -> Result<String, String> {
        let parsed = super::parse::parse(name, src).map_err(|e| e.to_string())?;
        for (k, v) in parsed.defines {
            self.extra.insert(k, v);
        }
        self.extra.insert(name.to_string(), parsed.body);
        self.call_template(name, dot, 0).map_err(|e| e.to_string())
    }
}

/// Go-ish type names for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// An empty map.
pub fn map() -> Map<String, Value> {
    Map::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_does() {
        for (f, s) in [
            (1.5, "1.5"),
            (3.0, "3"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (123456.0, "123456"),
        ] {
            assert_eq!(go_float(f), s, "{f}");
        }
    }
}
