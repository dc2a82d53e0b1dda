//! Go `text/template` syntax: text and `{{ actions }}` (with `{{-`/`-}}` trimming), into
//! a tree. Follows the Go package's grammar: pipelines of commands separated by `|`,
//! variable declarations and assignments, parenthesised pipelines, field chains on any
//! operand, and the control structures `if`/`else if`/`range`/`with`/`define`/`template`/
//! `block`/`break`/`continue`, with comments.

use std::collections::HashMap;

/// A syntax error with the template name and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {name}:{line}: {message}")]
pub struct ParseError {
    pub name: String,
    pub line: usize,
    pub message: String,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.` (the cursor).
    Dot,
    /// `.a.b`.
    Field(Vec<String>),
    /// `$x.a.b` (`$` alone is the root).
    Var(String, Vec<String>),
    /// A function name.
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `(pipeline).a.b`.
    Sub(Box<Pipe>, Vec<String>),
}

/// One command: an operand, or a function applied to operands.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub args: Vec<Arg>,
}

/// `$x := cmd | cmd` / `$i, $v := …` / `$x = …`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub decls: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Command>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If {
        pipe: Pipe,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    With {
        pipe: Pipe,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    Template {
        name: String,
        pipe: Option<Pipe>,
        line: usize,
    },
    Break(usize),
    Continue(usize),
}

/// A parsed file: its main body and the templates it defines.
#[derive(Debug, Default)]
pub struct Parsed {
    pub body: Vec<Node>,
    pub defines: HashMap<String, Vec<Node>>,
}

/// Deepest nesting of control structures and parentheses accepted.
const MAX_DEPTH: usize = 200;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    /// `.a.b` (a whole chain).
    Field(Vec<String>),
    /// `.a.b` directly after `)`: fields of the parenthesised value.
    Chain(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Comma,
    Declare,
    Assign,
}

/// An action's text split into tokens (Go's lexer, inside `{{ }}`).
fn lex_action(src: &str, name: &str, line: usize) -> Result<Vec<Tok>, ParseError> {
    let err = |m: String| ParseError {
        name: name.to_string(),
        line,
        message: m,
    };
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            b'(' => {
                out.push(Tok::LParen);
                i += 1
            }
            b')' => {
                // `).field` chains are lexed as a following Field token.
                out.push(Tok::RParen);
                i += 1
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Declare);
                i += 2
            }
            b'=' => {
                out.push(Tok::Assign);
                i += 1
            }
            b'.' if b
                .get(i + 1)
                .is_some_and(|c| ident_char(*c) && !c.is_ascii_digit()) =>
            {
                let after_paren = i > 0 && b[i - 1] == b')';
                let chain = field_chain(src, &mut i);
                out.push(if after_paren {
                    Tok::Chain(chain)
                } else {
                    Tok::Field(chain)
                });
            }
            b'.' if !b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                out.push(Tok::Dot);
                i += 1
            }
            b'$' => {
                let s = i;
                i += 1;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                let name = src[s..i].to_string();
                let chain = if b.get(i) == Some(&b'.')
                    && b.get(i + 1)
                        .is_some_and(|c| ident_char(*c) && !c.is_ascii_digit())
                {
                    field_chain(src, &mut i)
                } else {
                    vec![]
                };
                out.push(Tok::Var(name, chain));
            }
            b'"' => {
                let s = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    if i < b.len() && b[i] == b'\n' {
                        return Err(err("newline in a quoted string".into()));
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err(err("unterminated quoted string".into()));
                }
                i += 1;
                out.push(Tok::Str(unquote(&src[s..i]).map_err(err)?));
            }
            b'`' => {
                let s = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                if i >= b.len() {
                    return Err(err("unterminated raw string".into()));
                }
                out.push(Tok::Str(src[s..i].to_string()));
                i += 1;
            }
            b'\'' => {
                // A character constant is its code point, as in Go.
                let rest = &src[i + 1..];
                let end = rest
                    .find('\'')
                    .ok_or_else(|| err("unterminated character constant".into()))?;
                let lit = unquote(&format!("\"{}\"", &rest[..end])).map_err(err)?;
                let mut chars = lit.chars();
                let (Some(ch), None) = (chars.next(), chars.next()) else {
                    return Err(err(format!("bad character constant '{}'", &rest[..end])));
                };
                out.push(Tok::Int(ch as i64));
                i += end + 2;
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                let s = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || b[i] == b'_'
                        || ((b[i] == b'-' || b[i] == b'+')
                            && matches!(b[i - 1], b'e' | b'E' | b'p' | b'P')))
                {
                    i += 1;
                }
                out.push(
                    number(&src[s..i])
                        .ok_or_else(|| err(format!("bad number syntax: {:?}", &src[s..i])))?,
                );
            }
            c if ident_char(c) => {
                let s = i;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                let w = &src[s..i];
                out.push(match w {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(w.to_string()),
                });
            }
            _ => {
                return Err(err(format!(
                    "unexpected {:?} in action",
                    src[i..].chars().next().unwrap_or('?')
                )));
            }
        }
    }
    Ok(out)
}

/// `.a.b.c` from `src[*i]` (a `.`): the names, with `*i` moved past them.
fn field_chain(src: &str, i: &mut usize) -> Vec<String> {
    let b = src.as_bytes();
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let mut chain = Vec::new();
    while *i < b.len()
        && b[*i] == b'.'
        && b.get(*i + 1)
            .is_some_and(|c| ident_char(*c) && !c.is_ascii_digit())
    {
        let s = *i + 1;
        *i += 1;
        while *i < b.len() && ident_char(b[*i]) {
            *i += 1;
        }
        chain.push(src[s..*i].to_string());
    }
    chain
}

fn number(s: &str) -> Option<Tok> {
    let clean = s.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bn) = lower.strip_prefix("0b") {
        i64::from_str_radix(bn, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(n) = int {
        return Some(Tok::Int(if neg { -n } else { n }));
    }
    let f: f64 = body.parse().ok()?;
    Some(Tok::Float(if neg { -f } else { f }))
}

/// A Go interpreted string literal.
fn unquote(lit: &str) -> Result<String, String> {
    let inner = &lit[1..lit.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next().ok_or("bad escape at the end of a string")?;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| it.next()).collect();
                let v =
                    u32::from_str_radix(&hex, 16).map_err(|_| format!("bad escape \\{e}{hex}"))?;
                out.push(char::from_u32(v).ok_or(format!("bad code point \\{e}{hex}"))?);
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = it
                        .next()
                        .and_then(|c| c.to_digit(8))
                        .ok_or("bad octal escape")?;
                    v = v * 8 + d;
                }
                out.push(char::from_u32(v).ok_or("bad octal escape")?);
            }
            _ => return Err(format!("unknown escape \\{e}")),
        }
    }
    Ok(out)
}

/// One `{{ … }}` or a text run, with its starting line.
#[derive(Debug)]
enum Item {
    Text(String),
    Action(String, usize),
}

/// Split a source into text and actions, applying `{{-` / `-}}` trimming.
fn split(src: &str, name: &str) -> Result<Vec<Item>, ParseError> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let mut t = rest.to_string();
            if trim_next {
                t = t.trim_start_matches(is_space).to_string();
            }
            items.push(Item::Text(t));
            break;
        };
        let mut text = rest[..open].to_string();
        line += rest[..open].matches('\n').count();
        let after = &rest[open + 2..];
        let trim_left = after.starts_with("- ")
            || after.starts_with("-\t")
            || after.starts_with("-\n")
            || after.starts_with("-\r");
        if trim_next {
            text = text.trim_start_matches(is_space).to_string();
        }
        if trim_left {
            text = text.trim_end_matches(is_space).to_string();
        }
        items.push(Item::Text(text));
        let body_start = if trim_left { 1 } else { 0 };
        let inner = &after[body_start..];
        // A comment `/* … */` may hold `}}`.
        let close = if inner.trim_start().starts_with("/*") {
            let c = inner.find("*/").ok_or_else(|| ParseError {
                name: name.into(),
                line,
                message: "unclosed comment".into(),
            })?;
            inner[c..].find("}}").map(|x| x + c)
        } else {
            find_close(inner)
        };
        let Some(close) = close else {
            return Err(ParseError {
                name: name.into(),
                line,
                message: "unclosed action".into(),
            });
        };
        let mut body = &inner[..close];
        let trim_right = body.ends_with(" -")
            || body.ends_with("\t-")
            || body.ends_with("\n-")
            || body.ends_with("\r-");
        if trim_right {
            body = &body[..body.len() - 1];
        }
        items.push(Item::Action(body.to_string(), line));
        line += body.matches('\n').count();
        trim_next = trim_right;
        rest = &inner[close + 2..];
    }
    Ok(items)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'\'' => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'}' if b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

struct Parser<'a> {
    items: Vec<Item>,
    pos: usize,
    name: &'a str,
    defines: HashMap<String, Vec<Node>>,
    depth: usize,
}

/// What ended a list of nodes.
#[derive(Debug, PartialEq)]
enum Stop {
    Eof,
    End,
    Else(Option<Vec<Tok>>, usize),
}

/// Parse a template source named `name`.
pub fn parse(name: &str, src: &str) -> Result<Parsed, ParseError> {
    let items = split(src, name)?;
    let mut p = Parser {
        items,
        pos: 0,
        name,
        defines: HashMap::new(),
        depth: 0,
    };
    let (body, end) = p.list()?;
    match end {
        Stop::Eof => {}
        Stop::End => return Err(p.err(0, "unexpected {{end}}")),
        Stop::Else(_, l) => return Err(p.err(l, "unexpected {{else}}")),
    }
    Ok(Parsed {
        body,
        defines: p.defines,
    })
}

impl Parser<'_> {
    fn err(&self, line: usize, m: impl Into<String>) -> ParseError {
        ParseError {
            name: self.name.to_string(),
            line,
            message: m.into(),
        }
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(0, "templates nested too deeply"));
        }
        let mut nodes = Vec::new();
        let end = loop {
            let Some(item) = self.items.get(self.pos) else {
                break Stop::Eof;
            };
            self.pos += 1;
            let (src, line) = match item {
                Item::Text(t) => {
                    if !t.is_empty() {
                        nodes.push(Node::Text(t.clone()));
                    }
                    continue;
                }
                Item::Action(a, l) => (a.clone(), *l),
            };
            let trimmed = src.trim();
            if trimmed.starts_with("/*") {
                if !trimmed.ends_with("*/") {
                    return Err(self.err(line, "comment ends before closing delimiter"));
                }
                continue;
            }
            let toks = lex_action(&src, self.name, line)?;
            let Some(first) = toks.first().cloned() else {
                return Err(self.err(line, "missing value for command"));
            };
            let kw = match &first {
                Tok::Ident(w) => w.as_str(),
                _ => "",
            };
            let rest = toks[1..].to_vec();
            match kw {
                "end" => {
                    if !rest.is_empty() {
                        return Err(self.err(line, "unexpected tokens after end"));
                    }
                    break Stop::End;
                }
                "else" => break Stop::Else((!rest.is_empty()).then_some(rest), line),
                "if" | "with" => {
                    let pipe = self.pipe(&rest, line, false)?;
                    let (body, els) = self.control(line, kw)?;
                    nodes.push(if kw == "if" {
                        Node::If {
                            pipe,
                            then: body,
                            els,
                        }
                    } else {
                        Node::With { pipe, body, els }
                    });
                }
                "range" => {
                    let pipe = self.pipe(&rest, line, true)?;
                    let (body, els) = self.control(line, "range")?;
                    nodes.push(Node::Range { pipe, body, els });
                }
                "define" | "block" => {
                    let Some(Tok::Str(tname)) = rest.first().cloned() else {
                        return Err(self.err(line, format!("{kw} needs a quoted name")));
                    };
                    let (body, end) = self.list()?;
                    if end != Stop::End {
                        return Err(self.err(line, format!("unexpected EOF in {kw}")));
                    }
                    if kw == "block" {
                        let pipe = if rest.len() > 1 {
                            Some(self.pipe(&rest[1..], line, false)?)
                        } else {
                            None
                        };
                        self.defines.entry(tname.clone()).or_insert(body);
                        nodes.push(Node::Template {
                            name: tname,
                            pipe,
                            line,
                        });
                    } else {
                        if rest.len() > 1 {
                            return Err(self.err(line, "define takes only a name"));
                        }
                        // A later definition of the same name replaces an earlier one,
                        // as in Go (an empty one does not).
                        if !body
                            .iter()
                            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
                            || !self.defines.contains_key(&tname)
                        {
                            self.defines.insert(tname, body);
                        }
                    }
                }
                "template" => {
                    let Some(Tok::Str(tname)) = rest.first().cloned() else {
                        return Err(self.err(line, "template needs a quoted name"));
                    };
                    let pipe = if rest.len() > 1 {
                        Some(self.pipe(&rest[1..], line, false)?)
                    } else {
                        None
                    };
                    nodes.push(Node::Template {
                        name: tname,
                        pipe,
                        line,
                    });
                }
                "break" => nodes.push(Node::Break(line)),
                "continue" => nodes.push(Node::Continue(line)),
                _ => nodes.push(Node::Action(self.pipe(&toks, line, false)?)),
            }
        };
        self.depth -= 1;
        Ok((nodes, end))
    }

    /// The body of `if`/`with`/`range` and its `else` branch (`else if`/`else with`
    /// chains become a nested node in the else branch).
    fn control(&mut self, line: usize, kw: &str) -> Result<(Vec<Node>, Vec<Node>), ParseError> {
        let (body, end) = self.list()?;
        match end {
            Stop::End => Ok((body, vec![])),
            Stop::Eof => Err(self.err(line, format!("unexpected EOF in {kw}"))),
            Stop::Else(None, _) => {
                let (els, end) = self.list()?;
                if end != Stop::End {
                    return Err(self.err(line, format!("expected end of {kw}")));
                }
                Ok((body, els))
            }
            Stop::Else(Some(toks), eline) => {
                let Some(Tok::Ident(k)) = toks.first() else {
                    return Err(self.err(eline, "unexpected tokens after else"));
                };
                let k = k.clone();
                if k != "if" && k != "with" {
                    return Err(self.err(eline, format!("else {k} is not allowed")));
                }
                let pipe = self.pipe(&toks[1..], eline, false)?;
                let (inner, inner_els) = self.control(eline, &k)?;
                let node = if k == "if" {
                    Node::If {
                        pipe,
                        then: inner,
                        els: inner_els,
                    }
                } else {
                    Node::With {
                        pipe,
                        body: inner,
                        els: inner_els,
                    }
                };
                Ok((body, vec![node]))
            }
        }
    }

    fn pipe(&mut self, toks: &[Tok], line: usize, range: bool) -> Result<Pipe, ParseError> {
        let mut decls = Vec::new();
        let mut assign = false;
        let mut start = 0;
        // `$x :=`, `$x =`, and in range `$i, $v :=`.
        if let Some(Tok::Var(v, chain)) = toks.first()
            && chain.is_empty()
        {
            match toks.get(1) {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = toks[1] == Tok::Assign;
                    decls.push(v.clone());
                    start = 2;
                }
                Some(Tok::Comma) if range => {
                    if let (Some(Tok::Var(v2, c2)), Some(Tok::Declare | Tok::Assign)) =
                        (toks.get(2), toks.get(3))
                        && c2.is_empty()
                    {
                        assign = toks[3] == Tok::Assign;
                        decls.push(v.clone());
                        decls.push(v2.clone());
                        start = 4;
                    } else {
                        return Err(self.err(line, "bad range declaration"));
                    }
                }
                _ => {}
            }
        }
        let (cmds, used) = self.cmds(&toks[start..], line, 0)?;
        if used != toks.len() - start {
            return Err(self.err(line, "unexpected ) in operand"));
        }
        if cmds.is_empty() {
            return Err(self.err(line, "missing value for command"));
        }
        Ok(Pipe {
            decls,
            assign,
            cmds,
            line,
        })
    }

    /// Commands up to the end or an unmatched `)`; returns how many tokens were used.
    fn cmds(
        &mut self,
        toks: &[Tok],
        line: usize,
        depth: usize,
    ) -> Result<(Vec<Command>, usize), ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err(line, "parentheses nested too deeply"));
        }
        let mut cmds = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            match t {
                Tok::RParen => break,
                Tok::Pipe => {
                    if args.is_empty() {
                        return Err(self.err(line, "missing command before |"));
                    }
                    cmds.push(Command {
                        args: std::mem::take(&mut args),
                    });
                    i += 1;
                    continue;
                }
                Tok::LParen => {
                    let (inner, used) = self.cmds(&toks[i + 1..], line, depth + 1)?;
                    let close = i + 1 + used;
                    if toks.get(close) != Some(&Tok::RParen) {
                        return Err(self.err(line, "unclosed left paren"));
                    }
                    if inner.is_empty() {
                        return Err(self.err(line, "missing value in parentheses"));
                    }
                    i = close + 1;
                    let mut chain = Vec::new();
                    if let Some(Tok::Chain(c)) = toks.get(i) {
                        chain = c.clone();
                        i += 1;
                    }
                    args.push(Arg::Sub(
                        Box::new(Pipe {
                            decls: vec![],
                            assign: false,
                            cmds: inner,
                            line,
                        }),
                        chain,
                    ));
                    continue;
                }
                Tok::Dot => args.push(Arg::Dot),
                Tok::Field(chain) => args.push(Arg::Field(chain.clone())),
                Tok::Chain(_) => return Err(self.err(line, "unexpected field chain")),
                Tok::Var(v, chain) => args.push(Arg::Var(v.clone(), chain.clone())),
                Tok::Ident(f) => args.push(Arg::Ident(f.clone())),
                Tok::Str(s) => args.push(Arg::Str(s.clone())),
                Tok::Int(n) => args.push(Arg::Int(*n)),
                Tok::Float(f) => args.push(Arg::Float(*f)),
                Tok::Bool(b) => args.push(Arg::Bool(*b)),
                Tok::Nil => args.push(Arg::Nil),
                Tok::Comma | Tok::Declare | Tok::Assign => {
                    return Err(self.err(line, format!("unexpected {t:?} in command")));
                }
            }
            i += 1;
        }
        if !args.is_empty() {
            cmds.push(Command { args });
        } else if !cmds.is_empty() {
            return Err(self.err(line, "missing command after |"));
        }
        Ok((cmds, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_and_lines() {
        let items = split("a  {{- 1 -}}  b\n{{ 2 }}", "t").unwrap();
        let texts: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["a", "b\n"]);
        let e = parse("t", "line1\n{{ if }}").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "missing value for command")
        );
    }

    #[test]
    fn structures_parse() {
        let p = parse(
            "t",
            r#"{{ define "x" }}X{{ end }}{{ range $i, $v := .a }}{{ $v.b | quote }}{{ else }}none{{ end }}{{ if eq 1 2 }}a{{ else if .c }}b{{ else }}c{{ end }}{{ (include "x" .).y }}"#,
        )
        .unwrap();
        assert!(p.defines.contains_key("x"));
        assert_eq!(p.body.len(), 3);
        for bad in [
            "{{ if 1 }}",
            "{{ end }}",
            "{{ (1 }}",
            "{{ 1 | }}",
            "{{ \"x }}",
            "{{ define x }}{{ end }}",
        ] {
            assert!(parse("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let src = "{{ if 1 }}".repeat(MAX_DEPTH + 5) + &"{{ end }}".repeat(MAX_DEPTH + 5);
        assert!(parse("t", &src).is_err());
        let src = format!(
            "{{{{ {}1{} }}}}",
            "(".repeat(MAX_DEPTH + 5),
            ")".repeat(MAX_DEPTH + 5)
        );
        assert!(parse("t", &src).is_err());
    }

    #[test]
    fn literals() {
        let t = lex_action(r#" 0x1F 1.5 -3 'a' "q\"\n" `raw` nil true "#, "t", 1).unwrap();
        assert_eq!(
            t,
            vec![
                Tok::Int(31),
                Tok::Float(1.5),
                Tok::Int(-3),
                Tok::Int(97),
                Tok::Str("q\"\n".into()),
                Tok::Str("raw".into()),
                Tok::Nil,
                Tok::Bool(true)
            ]
        );
    }
}
