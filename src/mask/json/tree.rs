//! The reference path of `json`: parses the whole document into a `serde_json::Value`
//! tree, rewrites it and writes it compactly. It is what every output is defined by; the
//! fast path ([`super::stream`]) hands over to it for the documents it does not handle
//! (duplicate keys, deep nesting, escapes serde_json refuses).

use serde_json::{Map, Number, Value};

use super::{Action, JsonMasker};
use crate::mask::{Masker, MaskingKey};

/// Masks `input` (valid JSON or not) the way the tree defines it.
pub(super) fn mask(masker: &JsonMasker, input: &str, key: &MaskingKey, out: &mut String) {
    let Ok(document) = serde_json::from_str::<Value>(input) else {
        out.push_str(masker.fallback());
        return;
    };
    match walk(masker, document, 0, &masker.every, None, key).map(|v| serde_json::to_string(&v)) {
        Some(Ok(text)) => out.push_str(&text),
        _ => out.push_str(masker.fallback()),
    }
}

/// Rewrites `value`, found at `depth`, where `live` are the rules whose paths lead
/// here and `inherited` the rule that covers it from above. `None` means dropped.
fn walk(
    m: &JsonMasker,
    value: Value,
    depth: usize,
    live: &[usize],
    inherited: Option<usize>,
    key: &MaskingKey,
) -> Option<Value> {
    let covering = m.covering(live, depth, inherited);
    let action = covering.map(|r| &m.rules[r].action);
    if matches!(action, Some(Action::Null)) {
        return Some(Value::Null);
    }
    let deeper = m.deeper(live, depth);
    if deeper.is_empty() {
        match action {
            Some(Action::Keep) => return Some(value),
            None if !m.drop_rest => return Some(value),
            None => return None,
            _ => {}
        }
    }
    match value {
        Value::Object(map) => {
            let mut kept = Map::with_capacity(map.len());
            for (name, child) in map {
                let next = m.live_in_member(&deeper, depth, &name);
                if let Some(child) = walk(m, child, depth + 1, &next, covering, key) {
                    kept.insert(name, child);
                }
            }
            Some(Value::Object(kept))
        }
        Value::Array(items) => {
            let mut kept = Vec::with_capacity(items.len());
            for (i, child) in items.into_iter().enumerate() {
                let next = m.live_in_element(&deeper, depth, i);
                if let Some(child) = walk(m, child, depth + 1, &next, covering, key) {
                    kept.push(child);
                }
            }
            Some(Value::Array(kept))
        }
        leaf => match action {
            Some(Action::Mask(masker)) => Some(mask_leaf(leaf, &**masker, key)),
            Some(_) => Some(leaf),
            None if m.drop_rest => None,
            None => Some(leaf),
        },
    }
}

/// Masks one scalar: a string stays a string, a number's text is masked and stays a
/// number if it still is one, a boolean's text is masked to a string; null stays null.
pub(super) fn mask_leaf(leaf: Value, masker: &dyn Masker, key: &MaskingKey) -> Value {
    let mut out = String::new();
    match leaf {
        Value::String(s) => {
            masker.mask(&s, key, &mut out);
            Value::String(out)
        }
        Value::Number(n) => {
            masker.mask(&n.to_string(), key, &mut out);
            match out.parse::<Number>() {
                Ok(number) => Value::Number(number),
                Err(_) => Value::String(out),
            }
        }
        Value::Bool(b) => {
            masker.mask(if b { "true" } else { "false" }, key, &mut out);
            Value::String(out)
        }
        other => other,
    }
}
