//! Human-readable printing of tensors and JSON output.

use vouch_types::{DType, Tensor, tensor::json};

/// Elements shown per tensor in human output.
const SHOWN: usize = 12;

/// `float32[3,3] = [0.99, 0.005, …] (9 values)`.
pub fn tensor_summary(t: &Tensor) -> String {
    let shape = t
        .shape()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let values = json::to_json(t);
    let shown: Vec<String> = match values.get("data").and_then(|d| d.as_array()) {
        Some(data) => data.iter().take(SHOWN).map(|v| v.to_string()).collect(),
        None => vec!["(exact binary form; use --json)".into()],
    };
    let more = if t.len() > SHOWN {
        format!(", … ({} values)", t.len())
    } else {
        String::new()
    };
    let dtype: DType = t.dtype();
    format!("{dtype}[{shape}] = [{}{more}]", shown.join(", "))
}

/// Prints a JSON value, pretty.
pub fn json_out(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values always serialize")
    );
}
