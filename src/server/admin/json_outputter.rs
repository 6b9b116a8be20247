//! `JsonOutputter`: the AdminServer writes every command response as JSON through
//! Jackson's default pretty printer. Clients parse it, but operators and scripts also
//! grep and diff it, so the layout is Jackson's to the byte: objects one entry per line
//! with a two-space indent and `"key" : value`, arrays on one line as `[ a, b ]`, empty
//! ones as `{ }` and `[ ]`, no line end after the last brace.

use std::fmt::Write as _;

/// A JSON value with object keys kept in insertion order (upstream's `LinkedHashMap`).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    /// Written as Java's `Double.toString` (`0.0`, `1.5`, `1.0E-4`), as Jackson does.
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl From<bool> for Json {
    fn from(v: bool) -> Json {
        Json::Bool(v)
    }
}
impl From<i64> for Json {
    fn from(v: i64) -> Json {
        Json::Int(v)
    }
}
impl From<i32> for Json {
    fn from(v: i32) -> Json {
        Json::Int(v as i64)
    }
}
impl From<u64> for Json {
    fn from(v: u64) -> Json {
        Json::Int(v.min(i64::MAX as u64) as i64)
    }
}
impl From<usize> for Json {
    fn from(v: usize) -> Json {
        Json::Int(v.min(i64::MAX as usize) as i64)
    }
}
impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Float(v)
    }
}
impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.to_owned())
    }
}
impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::Str(v)
    }
}

/// An object under construction: `put` replaces a key in place, as a `LinkedHashMap`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonObject(pub Vec<(String, Json)>);

impl JsonObject {
    pub fn new() -> JsonObject {
        JsonObject(Vec::new())
    }

    pub fn put(&mut self, key: impl Into<String>, value: impl Into<Json>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn into_json(self) -> Json {
        Json::Obj(self.0)
    }
}

impl From<JsonObject> for Json {
    fn from(o: JsonObject) -> Json {
        Json::Obj(o.0)
    }
}

impl Json {
    /// Jackson's `DefaultPrettyPrinter` layout.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, 0);
        out
    }
}

fn indent(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("  ");
    }
}

// Objects nest one level deeper; arrays are inline and do not (Jackson's
// FixedSpaceIndenter), so an object inside an array indents from the enclosing object.
fn write_value(out: &mut String, v: &Json, level: usize) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Json::Float(f) => write_double(out, *f),
        Json::Str(s) => write_string(out, s),
        Json::Arr(items) => {
            out.push('[');
            if items.is_empty() {
                out.push_str(" ]");
                return;
            }
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { " " } else { ", " });
                write_value(out, item, level);
            }
            out.push_str(" ]");
        }
        Json::Obj(entries) => {
            out.push('{');
            if entries.is_empty() {
                out.push_str(" }");
                return;
            }
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_string(out, k);
                out.push_str(" : ");
                write_value(out, item, level + 1);
            }
            indent(out, level);
            out.push('}');
        }
    }
}

/// Jackson writes non-finite doubles as the strings Java prints for them.
fn write_double(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("\"NaN\"");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
    } else {
        out.push_str(&crate::server::command::java_double(f));
    }
}

/// Jackson's escaping (the snapshot formatter's, which writes Jackson's JSON too).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(&crate::server::snapshot_formatter::json_quote(s));
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jackson_default_pretty_printer_layout() {
        let mut o = JsonObject::new();
        o.put("command", "ruok");
        o.put("error", Json::Null);
        assert_eq!(o.clone().into_json().pretty(), "{\n  \"command\" : \"ruok\",\n  \"error\" : null\n}");
        let mut inner = JsonObject::new();
        inner.put("a", 1i64);
        let mut o = JsonObject::new();
        o.put("list", Json::Arr(vec![inner.clone().into_json(), inner.into_json()]));
        o.put("empty_list", Json::Arr(vec![]));
        o.put("empty_map", Json::Obj(vec![]));
        o.put("nums", Json::Arr(vec![Json::Int(1), Json::Float(0.5), Json::Float(0.0)]));
        assert_eq!(
            o.into_json().pretty(),
            "{\n  \"list\" : [ {\n    \"a\" : 1\n  }, {\n    \"a\" : 1\n  } ],\n  \"empty_list\" : [ ],\n  \"empty_map\" : { },\n  \"nums\" : [ 1, 0.5, 0.0 ]\n}"
        );
    }

    #[test]
    fn put_replaces_in_place_and_strings_escape() {
        let mut o = JsonObject::new();
        o.put("error", "x");
        o.put("k", 1i64);
        o.put("error", Json::Null);
        assert_eq!(o.0[0], ("error".to_string(), Json::Null));
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\n\u{1}/é");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\u0001/é\"");
        assert_eq!(Json::Float(1e-4).pretty(), "1.0E-4");
    }
}
