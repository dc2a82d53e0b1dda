//! A Go `text/template` engine with Helm's and Sprig's functions, written for charts:
//! [`parse`] reads templates, [`exec`] runs them over JSON-shaped data, [`funcs`] holds
//! the functions, [`yaml`] reads values and writes `toYaml` as Helm does.
//!
//! Why not an existing crate: `gtmpl` (0.7) implements `text/template` but its functions
//! cannot reach the template set, so `include` and `tpl` (in nearly every chart's
//! helpers) cannot be written on top of it, and it has no Sprig; `gtmpl-ng` adds
//! functions but not those two nor Helm's context.

mod crypto;
pub mod exec;
pub mod funcs;
mod more;
pub mod parse;
pub mod yaml;

use std::collections::HashMap;

pub use exec::{Engine, ExecError, Limits};
pub use parse::ParseError;

impl Engine {
    /// An engine with every function and no templates.
    pub fn new() -> Engine {
        Engine {
            templates: HashMap::new(),
            funcs: funcs::all(),
            limits: Limits::default(),
            methods: None,
            shared: Default::default(),
        }
    }

    /// The values made at random by the renders so far (see [`exec::Exec::generated`]),
    /// taken out.
    pub fn take_generated(&self) -> Vec<String> {
        self.shared.take_generated()
    }

    /// Parse `src` as template `name`, adding it and what it defines. As in Go, a
    /// definition replaces an earlier one of the same name unless it is empty.
    pub fn add(&mut self, name: &str, src: &str) -> Result<(), ParseError> {
        let p = parse::parse(name, src)?;
        for (k, v) in p.defines {
            let empty = v
                .iter()
                .all(|n| matches!(n, parse::Node::Text(t) if t.trim().is_empty()));
            if empty && self.templates.contains_key(&k) {
                continue;
            }
            self.templates.insert(k, v);
        }
        self.templates.insert(name.to_string(), p.body);
        Ok(())
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(src: &str, data: serde_json::Value) -> String {
        let mut e = Engine::new();
        e.add("t", src).unwrap();
        e.render("t", &data).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn actions_pipelines_and_control() {
        let d = json!({"name": "web", "n": 3.0, "items": ["a", "b"], "m": {"y": 2, "x": 1}, "empty": ""});
        assert_eq!(render("{{ .name | upper | quote }}", d.clone()), "\"WEB\"");
        assert_eq!(
            render("{{ if .empty }}y{{ else if .name }}n{{ end }}", d.clone()),
            "n"
        );
        assert_eq!(
            render(
                "{{ range $i, $v := .items }}{{ $i }}={{ $v }};{{ end }}",
                d.clone()
            ),
            "0=a;1=b;"
        );
        assert_eq!(
            render(
                "{{ range $k, $v := .m }}{{ $k }}{{ $v }}{{ end }}",
                d.clone()
            ),
            "x1y2"
        );
        assert_eq!(
            render(
                "{{ with .m }}{{ .x }}{{ end }}{{ with .nope }}no{{ else }}else{{ end }}",
                d.clone()
            ),
            "1else"
        );
        assert_eq!(
            render("{{ .n }} {{ printf \"%d-%s\" 3 .name }}", d.clone()),
            "3 3-web"
        );
        assert_eq!(
            render(
                "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
                d.clone()
            ),
            "2"
        );
        assert_eq!(
            render(
                "{{ range .items }}{{ if eq . \"a\" }}{{ continue }}{{ end }}{{ . }}{{ end }}",
                d.clone()
            ),
            "b"
        );
        assert_eq!(render("a\n  {{- \" b \" -}}\n c", d.clone()), "a b c");
        assert_eq!(
            render("{{/* note */}}x{{- /* trimmed */ -}} y", d.clone()),
            "xy"
        );
        assert_eq!(
            render("{{ and 1 0 }} {{ or 0 \"\" 5 }} {{ not 0 }}", d.clone()),
            "0 5 true"
        );
        assert_eq!(render("{{ .missing }}", d.clone()), "<no value>");
        let mut e = Engine::new();
        e.add("t", "{{ .missing.deeper }}").unwrap();
        let err = e.render("t", &d).unwrap_err().to_string();
        assert!(
            err.contains("nil pointer evaluating interface {}.deeper"),
            "{err}"
        );
    }

    #[test]
    fn define_include_tpl() {
        let src = r#"{{- define "app.name" -}}{{ default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}{{- end -}}
name: {{ include "app.name" . }}
labels: {{- include "app.labels" . | nindent 2 }}
msg: {{ tpl .Values.msg . }}
{{- define "app.labels" -}}
app: {{ include "app.name" . }}
{{- end }}"#;
        let d = json!({"Chart": {"Name": "demo-"}, "Values": {"msg": "hi {{ .Chart.Name }}"}});
        assert_eq!(
            render(src, d),
            "name: demo\nlabels:\n  app: demo\nmsg: hi demo-"
        );
        // `.a .b` are two operands, `.a.b` one.
        let d = json!({"a": "x", "b": "y"});
        assert_eq!(render("{{ default .a .b }}", d), "y");
    }

    #[test]
    fn hostile_templates_stop() {
        let mut e = Engine::new();
        e.add(
            "t",
            r#"{{ define "loop" }}{{ include "loop" . }}{{ end }}{{ include "loop" . }}"#,
        )
        .unwrap();
        let err = e.render("t", &json!({})).unwrap_err();
        assert!(err.to_string().contains("nested more than"), "{err}");
        let mut e = Engine::new();
        e.limits.max_output = 1000;
        e.add("t", "{{ range until 100000 }}xxxxxxxxxx{{ end }}")
            .unwrap();
        assert!(e.render("t", &json!({})).is_err());
        // Huge counts and widths are refused, not allocated.
        let mut e = Engine::new();
        e.add("t", "{{ range 100000000000 }}x{{ end }}").unwrap();
        assert!(
            e.render("t", &json!({}))
                .unwrap_err()
                .to_string()
                .contains("steps allowed")
        );
        let mut e = Engine::new();
        e.limits.max_output = 1 << 16;
        e.add(
            "t",
            "{{ $s := \"xxxxxxxx\" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}",
        )
        .unwrap();
        assert!(
            e.render("t", &json!({}))
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
        let mut e = Engine::new();
        e.add(
            "t",
            "{{ printf \"%99999999999d\" 1 | len }} {{ trunc -9223372036854775808 \"abc\" }}",
        )
        .unwrap();
        assert_eq!(e.render("t", &json!({})).unwrap(), "1048576 abc");
        let mut e = Engine::new();
        e.add("t", "{{ .a.b }}").unwrap();
        assert!(
            e.render("t", &json!({"a": "str"}))
                .unwrap_err()
                .to_string()
                .contains("can't evaluate field b")
        );
    }

    #[test]
    fn budgets_hold_across_the_templates_of_a_chart() {
        let mut e = Engine::new();
        e.limits.max_steps = 1_000;
        e.limits.max_total_steps = 1_500;
        e.add("a", "{{ range until 600 }}.{{ end }}").unwrap();
        e.add("b", "{{ range until 600 }}.{{ end }}").unwrap();
        e.add("c", "{{ range until 600 }}.{{ end }}").unwrap();
        // Each alone is within the per-template budget; the third passes the chart's.
        assert!(e.render("a", &json!({})).is_ok());
        assert!(e.render("b", &json!({})).is_ok());
        let err = e.render("c", &json!({})).unwrap_err();
        assert!(
            err.message.contains("in the chart's templates together"),
            "{err}"
        );
        // And the clock: an engine whose deadline has passed stops.
        let mut e = Engine::new();
        e.limits.deadline = Some(std::time::Duration::ZERO);
        e.add("t", "{{ range until 100000 }}.{{ end }}").unwrap();
        let err = e.render("t", &json!({})).unwrap_err();
        assert!(err.message.contains("took longer than"), "{err}");
    }
}
