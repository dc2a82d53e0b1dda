//! Sub-charts as Helm treats them before rendering: dependencies declared in
//! `Chart.yaml` (or a v1 chart's `requirements.yaml`) matched with the charts in
//! `charts/`, aliases, `condition` and `tags`, `import-values`, and the values each
//! chart sees (its defaults under the parent's key, `global` passed down).
//!
//! The order is Helm's: enable (aliases first, then tags, then conditions, top down),
//! then import values (bottom up, from defaults only), then coalesce the user's values
//! over everything.

use serde_json::{Map, Value};

use crate::chart::{Chart, coalesce};
use crate::template::funcs::semver_check;
use crate::template::yaml::from_yaml;

/// One entry of a chart's `dependencies`.
#[derive(Debug, Clone, Default)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub alias: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub import_values: Vec<Value>,
}

impl Dependency {
    /// The name the sub-chart goes by once aliased.
    pub fn effective_name(&self) -> &str {
        if self.alias.is_empty() {
            &self.name
        } else {
            &self.alias
        }
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// The chart's declared dependencies: `Chart.yaml`'s, or for an `apiVersion: v1` chart
/// without them, `requirements.yaml`'s. Entries that are not mappings are skipped.
pub fn dependencies(chart: &Chart) -> Vec<Dependency> {
    let list = match chart.metadata.get("dependencies") {
        Some(Value::Array(a)) => a.clone(),
        _ => chart
            .raw
            .get("requirements.yaml")
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| from_yaml(t).ok())
            .and_then(|v| match v.get("dependencies") {
                Some(Value::Array(a)) => Some(a.clone()),
                _ => None,
            })
            .unwrap_or_default(),
    };
    list.iter()
        .filter(|d| d.is_object())
        .map(|d| Dependency {
            name: text(d, "name"),
            version: text(d, "version"),
            repository: text(d, "repository"),
            alias: text(d, "alias"),
            condition: text(d, "condition"),
            tags: d
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            import_values: d
                .get("import-values")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
}

fn write_dependencies(chart: &mut Chart, deps: &[Dependency]) {
    if deps.is_empty() && !chart.metadata.contains_key("dependencies") {
        return;
    }
    let list = deps
        .iter()
        .map(|d| {
            let mut m = Map::new();
            m.insert("name".into(), d.effective_name().into());
            for (k, v) in [
                ("version", &d.version),
                ("repository", &d.repository),
                ("condition", &d.condition),
                ("alias", &d.alias),
            ] {
                if !v.is_empty() {
                    m.insert(k.into(), v.clone().into());
                }
            }
            if !d.tags.is_empty() {
                m.insert("tags".into(), d.tags.clone().into());
            }
            if !d.import_values.is_empty() {
                m.insert("import-values".into(), d.import_values.clone().into());
            }
            Value::Object(m)
        })
        .collect();
    chart
        .metadata
        .insert("dependencies".into(), Value::Array(list));
}

/// The entry `helm pull --version` takes from a repository's list: the exact version if
/// listed, else the newest that the constraint allows; with no version asked, the newest
/// that is not a prerelease.
pub fn pick_version(versions: &[String], want: Option<&str>) -> Option<usize> {
    use crate::template::funcs::{parse_semver, semver_cmp};
    if let Some(w) = want
        && let Some(i) = versions.iter().position(|v| v == w)
    {
        return Some(i);
    }
    versions
        .iter()
        .enumerate()
        .filter_map(|(i, v)| parse_semver(v).map(|p| (i, p)))
        .filter(|(i, p)| match want {
            Some(c) => compatible(c, &versions[*i]),
            None => p.3.is_empty(),
        })
        .max_by(|a, b| semver_cmp(&a.1, &b.1))
        .map(|(i, _)| i)
}

/// Helm's `IsCompatibleRange`: an unparsable version or constraint matches nothing.
pub(crate) fn compatible(constraint: &str, version: &str) -> bool {
    semver_check(constraint, version).unwrap_or(false)
}

/// The chart with Helm's dependency processing done: aliased copies, disabled sub-charts
/// removed, imported values in the defaults. Problems (a declared dependency missing from
/// `charts/`, a condition that is not a boolean) are added to `errors`, naming the chart.
pub fn process(chart: &Chart, user: &Value, errors: &mut Vec<String>) -> Chart {
    let mut c = chart.clone();
    let mut budget = Budget {
        charts: MAX_CHART_INSTANCES,
        bytes: MAX_INSTANCE_BYTES,
    };
    enable(&mut c, user, "", chart.name(), errors, &mut budget);
    import_values(&mut c, errors);
    c
}

/// Aliases copy sub-charts (with their own sub-charts); a hostile chart could ask for a
/// copy per alias at every level. These bound the copies a render makes.
const MAX_CHART_INSTANCES: usize = 1_000;
const MAX_INSTANCE_BYTES: u64 = 256 << 20;

struct Budget {
    charts: usize,
    bytes: u64,
}

/// Bytes of a chart and its sub-charts, as read.
fn size(c: &Chart) -> u64 {
    c.raw.values().map(|b| b.len() as u64).sum::<u64>() + c.subcharts.iter().map(size).sum::<u64>()
}

fn count(c: &Chart) -> usize {
    1 + c.subcharts.iter().map(count).sum::<usize>()
}

fn enable(
    c: &mut Chart,
    values: &Value,
    path: &str,
    shown: &str,
    errors: &mut Vec<String>,
    budget: &mut Budget,
) {
    let mut deps = dependencies(c);
    let missing: Vec<&str> = deps
        .iter()
        .filter(|d| !c.subcharts.iter().any(|s| s.name() == d.name))
        .map(|d| d.name.as_str())
        .collect();
    if !missing.is_empty() {
        errors.push(format!(
            "{shown}: found in Chart.yaml, but missing in charts/ directory: {}",
            missing.join(", ")
        ));
    }
    // Charts no dependency claims stay as they are; each dependency takes (a copy of) the
    // first compatible chart, renamed to its alias.
    let mut subs: Vec<Chart> = c
        .subcharts
        .iter()
        .filter(|s| {
            !deps
                .iter()
                .any(|d| d.name == s.name() && compatible(&d.version, &s.version()))
        })
        .cloned()
        .collect();
    for d in &deps {
        if let Some(s) = c
            .subcharts
            .iter()
            .find(|s| s.name() == d.name && compatible(&d.version, &s.version()))
        {
            let (n, b) = (count(s), size(s));
            if n > budget.charts || b > budget.bytes {
                errors.push(format!(
                    "{shown}: dependency {} not used: more than {MAX_CHART_INSTANCES} sub-chart copies or {MAX_INSTANCE_BYTES} bytes of them (aliases)",
                    d.effective_name()
                ));
                continue;
            }
            budget.charts -= n;
            budget.bytes -= b;
            let mut copy = s.clone();
            if !d.alias.is_empty() {
                copy.metadata
                    .insert("name".into(), Value::String(d.alias.clone()));
            }
            subs.push(copy);
        }
    }
    c.subcharts = subs;
    let cvals = match coalesce_values(c, values) {
        Ok(v) => v,
        Err(e) => {
            errors.push(format!("{shown}: {e}"));
            values.clone()
        }
    };
    let mut enabled = vec![true; deps.len()];
    // Tags: any true tag enables; otherwise a false one disables.
    if let Some(Value::Object(tags)) = cvals.get("tags") {
        for (d, on) in deps.iter().zip(enabled.iter_mut()) {
            let states: Vec<bool> = d
                .tags
                .iter()
                .filter_map(|t| tags.get(t).and_then(Value::as_bool))
                .collect();
            if states.contains(&true) {
                *on = true;
            } else if states.contains(&false) {
                *on = false;
            }
        }
    }
    // Conditions: the first of the comma-separated paths that holds a boolean decides.
    for (d, on) in deps.iter().zip(enabled.iter_mut()) {
        for cond in d.condition.trim().split(',').filter(|p| !p.is_empty()) {
            match path_value(&cvals, &format!("{path}{cond}")) {
                Some(Value::Bool(b)) => {
                    *on = *b;
                    break;
                }
                Some(Value::Object(_)) | None => {}
                Some(_) => errors.push(format!(
                    "{shown}: condition path '{cond}' for chart {} returned non-bool value",
                    d.effective_name()
                )),
            }
        }
    }
    let disabled: Vec<String> = deps
        .iter()
        .zip(&enabled)
        .filter(|(_, on)| !**on)
        .map(|(d, _)| d.effective_name().to_string())
        .collect();
    c.subcharts
        .retain(|s| !disabled.iter().any(|n| n == s.name()));
    let mut kept = Vec::new();
    for (mut d, on) in deps.drain(..).zip(enabled) {
        if on {
            if !d.alias.is_empty() {
                d.name = d.alias.clone();
            }
            kept.push(d);
        }
    }
    write_dependencies(c, &kept);
    for s in &mut c.subcharts {
        let name = s.name().to_string();
        enable(
            s,
            &cvals,
            &format!("{path}{name}."),
            &format!("{shown}/charts/{name}"),
            errors,
            budget,
        );
    }
}

/// `a.b.c` in a values tree (Helm's `PathValue`).
fn path_value<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// `import-values`, bottom up: each listed table of a sub-chart's defaults is copied into
/// the parent's defaults, where the parent's own values win.
fn import_values(c: &mut Chart, errors: &mut Vec<String>) {
    for s in &mut c.subcharts {
        import_values(s, errors);
    }
    let deps = dependencies(c);
    if deps.iter().all(|d| d.import_values.is_empty()) {
        return;
    }
    let cvals = match coalesce_values(c, &Value::Object(Map::new())) {
        Ok(v) => v,
        Err(e) => {
            errors.push(format!("{}: {e}", c.name()));
            return;
        }
    };
    let mut imported = Value::Object(Map::new());
    for d in &deps {
        for iv in &d.import_values {
            let (child, parent) = match iv {
                Value::String(s) => (format!("exports.{s}"), ".".to_string()),
                Value::Object(_) => (text(iv, "child"), text(iv, "parent")),
                _ => continue,
            };
            match path_value(&cvals, &format!("{}.{child}", d.name)) {
                Some(Value::Object(t)) => {
                    let t = Value::Object(t.clone());
                    merge_tables(&mut imported, &path_to_map(&parent, t));
                }
                _ => errors.push(format!(
                    "{}: import-values: chart {} has no table {child}",
                    c.name(),
                    d.name
                )),
            }
        }
    }
    let mut values = cvals;
    merge_tables(&mut values, &imported);
    c.values = values;
}

/// `{a: {b: data}}` for `a.b`; `data` itself for `.`.
fn path_to_map(path: &str, data: Value) -> Value {
    if path == "." || path.is_empty() {
        return data;
    }
    path.split('.').rev().fold(data, |acc, k| {
        let mut m = Map::new();
        m.insert(k.to_string(), acc);
        Value::Object(m)
    })
}

/// Helm's `MergeTables`: what `dst` has wins; tables merge deeply.
fn merge_tables(dst: &mut Value, src: &Value) {
    let (Value::Object(d), Value::Object(s)) = (dst, src) else {
        return;
    };
    for (k, v) in s {
        match d.get_mut(k) {
            None => {
                d.insert(k.clone(), v.clone());
            }
            Some(existing) => {
                if existing.is_object() && v.is_object() {
                    merge_tables(existing, v);
                }
            }
        }
    }
}

/// Helm's `CoalesceValues`: `user` over the chart's defaults, and under each sub-chart's
/// key that sub-chart's defaults below what the parent set, with the parent's `global`
/// passed down (the parent's wins).
pub fn coalesce_values(chart: &Chart, user: &Value) -> Result<Value, String> {
    let mut v = coalesce(&chart.values, user);
    if !v.is_object() {
        v = Value::Object(Map::new());
    }
    for sub in &chart.subcharts {
        let name = sub.name().to_string();
        let given = match v.get(&name) {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(o @ Value::Object(_)) => o.clone(),
            Some(other) => {
                return Err(format!(
                    "type mismatch on {name}: {} is not a table",
                    kind(other)
                ));
            }
        };
        let mut given = given;
        // Every sub-chart gets a `global` table (empty when no one set one), as Helm's
        // coalesceGlobals leaves it.
        let parent_global = match v.get("global") {
            Some(g @ Value::Object(_)) => g.clone(),
            _ => Value::Object(Map::new()),
        };
        let own = match given.get("global") {
            Some(o @ Value::Object(_)) => o.clone(),
            _ => Value::Object(Map::new()),
        };
        given["global"] = coalesce(&own, &parent_global);
        let merged = coalesce_values(sub, &given)?;
        v[name.as_str()] = merged;
    }
    Ok(v)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chart(name: &str, values: Value, subs: Vec<Chart>, deps: Value) -> Chart {
        let mut metadata = Map::new();
        metadata.insert("name".into(), name.into());
        metadata.insert("version".into(), "1.0.0".into());
        if !deps.is_null() {
            metadata.insert("dependencies".into(), deps);
        }
        Chart {
            metadata,
            values,
            templates: Default::default(),
            files: Default::default(),
            subcharts: subs,
            raw: Default::default(),
            dir_name: name.into(),
        }
    }

    #[test]
    fn aliases_conditions_tags_and_imports() {
        let redis = chart(
            "redis",
            json!({"port": 6379, "exports": {"conn": {"redisPort": 6379}}}),
            vec![],
            Value::Null,
        );
        let metrics = chart("metrics", json!({"on": true}), vec![], Value::Null);
        let parent = chart(
            "app",
            json!({"cache": {"enabled": true}, "redis": {"enabled": false}, "tags": {"monitoring": false}, "redisPort": 1}),
            vec![redis, metrics],
            json!([
                {"name": "redis", "version": "1.x", "condition": "redis.enabled"},
                {"name": "redis", "version": ">=1.0.0", "alias": "cache", "condition": "cache.enabled", "import-values": ["conn"]},
                {"name": "metrics", "version": "~1.0", "tags": ["monitoring"]},
            ]),
        );
        let mut errors = vec![];
        let p = process(&parent, &json!({}), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<&str> = p.subcharts.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["cache"]);
        // The parent's own value wins over the imported one.
        assert_eq!(p.values["redisPort"], 1);
        let v = coalesce_values(&p, &json!({"tags": {"monitoring": true}})).unwrap();
        assert_eq!(v["cache"]["port"], 6379);
        // Tags are read at enable time, from the user's values too.
        let p = process(&parent, &json!({"tags": {"monitoring": true}}), &mut errors);
        let names: Vec<&str> = p.subcharts.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["cache", "metrics"]);
    }

    #[test]
    fn aliases_cannot_multiply_charts_without_bound() {
        // 40 aliases at each of 3 levels would be 64,000 copies.
        let aliases = |name: &str| -> Value {
            Value::Array(
                (0..40)
                    .map(|i| json!({"name": name, "version": "1.0.0", "alias": format!("{name}{i}")}))
                    .collect(),
            )
        };
        let leaf = chart("leaf", json!({}), vec![], Value::Null);
        let mid = chart("mid", json!({}), vec![leaf], aliases("leaf"));
        let top = chart("top", json!({}), vec![mid], aliases("mid"));
        let root = chart("root", json!({}), vec![top], aliases("top"));
        let mut errors = vec![];
        let p = process(&root, &json!({}), &mut errors);
        assert!(count(&p) <= MAX_CHART_INSTANCES + 1, "{}", count(&p));
        assert!(
            errors.iter().any(|e| e.contains("sub-chart copies")),
            "{errors:?}"
        );
    }

    #[test]
    fn missing_dependencies_and_type_mismatches_are_named() {
        let parent = chart(
            "app",
            json!({"sub": "scalar"}),
            vec![chart("sub", json!({}), vec![], Value::Null)],
            json!([{"name": "gone", "version": "1.0.0"}]),
        );
        let mut errors = vec![];
        process(&parent, &json!({}), &mut errors);
        assert!(
            errors
                .iter()
                .any(|e| e.contains("missing in charts/ directory: gone")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("type mismatch on sub")),
            "{errors:?}"
        );
    }

    #[test]
    fn versions_are_picked_as_helm_pull_does() {
        let v: Vec<String> = ["1.2.0", "1.10.0", "2.0.0-rc.1", "1.9.3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(pick_version(&v, None), Some(1));
        assert_eq!(pick_version(&v, Some("1.9.3")), Some(3));
        assert_eq!(pick_version(&v, Some("~1.9")), Some(3));
        assert_eq!(pick_version(&v, Some(">=2.0.0-0")), Some(2));
        assert_eq!(pick_version(&v, Some("3.x")), None);
    }

    #[test]
    fn globals_flow_down_and_the_parent_wins() {
        let sub = chart(
            "sub",
            json!({"global": {"a": "child", "b": "child"}, "x": 1}),
            vec![],
            Value::Null,
        );
        let parent = chart(
            "app",
            json!({"global": {"a": "parent"}}),
            vec![sub],
            Value::Null,
        );
        let v = coalesce_values(&parent, &json!({"sub": {"x": 2}})).unwrap();
        assert_eq!(
            v["sub"],
            json!({"global": {"a": "parent", "b": "child"}, "x": 2})
        );
        assert_eq!(v["global"], json!({"a": "parent"}));
    }
}
