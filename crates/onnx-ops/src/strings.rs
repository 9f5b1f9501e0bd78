//! String operators: `StringConcat`, `StringSplit` and `StringNormalizer`.
//!
//! Case changes are Unicode's (Rust's `to_lowercase`/`to_uppercase`, locale-independent);
//! `StringNormalizer`'s `locale` attribute is accepted and not used, and accents are kept.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{ArrayD, IxDyn};

use crate::rust_op::{Kernel, boxed};

fn strings(t: &Tensor) -> TractResult<&[String]> {
    ensure!(
        t.datum_type() == String::datum_type(),
        "expected strings, got {:?}",
        t.datum_type()
    );
    t.try_as_plain_ram()?.as_slice::<String>()
}

fn string_tensor(shape: &[usize], values: Vec<String>) -> TractResult<TValue> {
    Ok(Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), values)?).into_tvalue())
}

/// `StringConcat`: element-wise concatenation, with broadcasting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringConcat;

/// Builds `StringConcat`.
pub fn string_concat(
    _ctx: &ParsingContext,
    _node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    boxed(StringConcat)
}

impl Kernel for StringConcat {
    fn name(&self) -> &'static str {
        "StringConcat"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        for input in inputs {
            ensure!(
                input.datum_type == String::datum_type(),
                "StringConcat: inputs must be strings"
            );
        }
        let shape = tract_onnx::tract_core::broadcast::multi_broadcast(&[
            inputs[0].shape.to_tvec(),
            inputs[1].shape.to_tvec(),
        ])?;
        Ok(tvec![String::datum_type().fact(shape)])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let shape = tract_onnx::tract_core::broadcast::multi_broadcast(&[
            inputs[0].shape().to_vec(),
            inputs[1].shape().to_vec(),
        ])?;
        let a = inputs[0].to_plain_array_view::<String>()?;
        let b = inputs[1].to_plain_array_view::<String>()?;
        let a = a
            .broadcast(IxDyn(&shape))
            .context("StringConcat: broadcast")?;
        let b = b
            .broadcast(IxDyn(&shape))
            .context("StringConcat: broadcast")?;
        let values: Vec<String> = a
            .iter()
            .zip(b.iter())
            .map(|(a, b)| format!("{a}{b}"))
            .collect();
        Ok(tvec![string_tensor(&shape, values)?])
    }
}

/// `StringSplit`: splits each string on a delimiter (whitespace runs when empty), padding the
/// pieces with empty strings to the longest; the second output counts the pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringSplit {
    delimiter: Option<String>,
    maxsplit: Option<usize>,
    pieces: Symbol,
}

/// Builds `StringSplit`.
pub fn string_split(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let delimiter = node
        .get_attr_opt::<&str>("delimiter")?
        .filter(|d| !d.is_empty())
        .map(String::from);
    let maxsplit = node
        .get_attr_opt::<i64>("maxsplit")?
        .map(|m| usize::try_from(m).context("StringSplit: negative maxsplit"))
        .transpose()?;
    boxed(StringSplit {
        delimiter,
        maxsplit,
        pieces: ctx.template.symbols.new_with_prefix("pieces"),
    })
}

impl StringSplit {
    fn split(&self, s: &str) -> Vec<String> {
        let max = self.maxsplit.unwrap_or(usize::MAX);
        match &self.delimiter {
            Some(d) => {
                let n = max.saturating_add(1);
                s.splitn(n, d.as_str()).map(String::from).collect()
            }
            None => {
                // Python's str.split(None, maxsplit): runs of whitespace, no empty pieces.
                let mut pieces = vec![];
                let mut rest = s.trim_start();
                while !rest.is_empty() {
                    if pieces.len() == max {
                        pieces.push(rest.to_string());
                        break;
                    }
                    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    pieces.push(rest[..end].to_string());
                    rest = rest[end..].trim_start();
                }
                pieces
            }
        }
    }
}

impl Kernel for StringSplit {
    fn name(&self) -> &'static str {
        "StringSplit"
    }

    fn nboutputs(&self) -> usize {
        2
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == String::datum_type(),
            "StringSplit: input must be strings"
        );
        let mut shape = inputs[0].shape.to_tvec();
        shape.push(self.pieces.to_dim());
        Ok(tvec![
            String::datum_type().fact(shape),
            i64::datum_type().fact(inputs[0].shape.clone())
        ])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = strings(&inputs[0])?;
        let split: Vec<Vec<String>> = x.iter().map(|s| self.split(s)).collect();
        let width = split.iter().map(Vec::len).max().unwrap_or(0);
        let counts: Vec<i64> = split.iter().map(|p| p.len() as i64).collect();
        let mut values = Vec::with_capacity(x.len() * width);
        for mut pieces in split {
            pieces.resize(width, String::new());
            values.extend(pieces);
        }
        let mut shape = inputs[0].shape().to_vec();
        shape.push(width);
        Ok(tvec![
            string_tensor(&shape, values)?,
            Tensor::from_shape(inputs[0].shape(), &counts)?.into_tvalue()
        ])
    }
}

/// How `StringNormalizer` changes case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseChange {
    None,
    Lower,
    Upper,
}

/// `StringNormalizer`: removes stop words (whole space-separated words) and changes case, on a
/// `[C]` or `[1, C]` input; strings left empty are dropped (one empty string if none remain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringNormalizer {
    case: CaseChange,
    case_sensitive: bool,
    stopwords: Vec<String>,
    kept: Symbol,
}

/// Builds `StringNormalizer`.
pub fn string_normalizer(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let case = match node
        .get_attr_opt::<&str>("case_change_action")?
        .unwrap_or("NONE")
    {
        "NONE" => CaseChange::None,
        "LOWER" => CaseChange::Lower,
        "UPPER" => CaseChange::Upper,
        other => bail!("StringNormalizer: unknown case_change_action {other:?}"),
    };
    let stopwords = node
        .get_attr_opt_vec::<String>("stopwords")?
        .unwrap_or_default();
    boxed(StringNormalizer {
        case,
        case_sensitive: node.get_attr_opt::<i64>("is_case_sensitive")?.unwrap_or(0) != 0,
        stopwords,
        kept: ctx.template.symbols.new_with_prefix("kept"),
    })
}

impl StringNormalizer {
    fn change_case(&self, s: &str) -> String {
        match self.case {
            CaseChange::None => s.to_string(),
            CaseChange::Lower => s.to_lowercase(),
            CaseChange::Upper => s.to_uppercase(),
        }
    }

    fn normalize(&self, s: &str) -> String {
        let remove = |text: &str, stops: &[String]| {
            text.split(' ')
                .filter(|w| !stops.iter().any(|s| s == w))
                .collect::<Vec<_>>()
                .join(" ")
        };
        if self.stopwords.is_empty() {
            return self.change_case(s);
        }
        if self.case_sensitive {
            self.change_case(&remove(s, &self.stopwords))
        } else {
            let stops: Vec<String> = self.stopwords.iter().map(|w| self.change_case(w)).collect();
            remove(&self.change_case(s), &stops)
        }
    }
}

impl Kernel for StringNormalizer {
    fn name(&self) -> &'static str {
        "StringNormalizer"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        ensure!(
            x.datum_type == String::datum_type(),
            "StringNormalizer: input must be strings"
        );
        let shape: TVec<TDim> = match x.rank() {
            1 => tvec![self.kept.to_dim()],
            2 if x.shape[0] == 1.to_dim() => tvec![1.to_dim(), self.kept.to_dim()],
            2 => x.shape.to_tvec(),
            r => bail!("StringNormalizer: input of rank {r}, expected [C] or [1, C]"),
        };
        Ok(tvec![String::datum_type().fact(shape)])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = strings(&inputs[0])?;
        let normalized: Vec<String> = x.iter().map(|s| self.normalize(s)).collect();
        let shape = inputs[0].shape();
        let filtered = |values: Vec<String>| {
            let kept: Vec<String> = values.into_iter().filter(|s| !s.is_empty()).collect();
            if kept.is_empty() {
                vec![String::new()]
            } else {
                kept
            }
        };
        match shape {
            [_] => {
                let kept = filtered(normalized);
                Ok(tvec![string_tensor(&[kept.len()], kept)?])
            }
            [1, _] => {
                let kept = filtered(normalized);
                Ok(tvec![string_tensor(&[1, kept.len()], kept)?])
            }
            _ => Ok(tvec![string_tensor(shape, normalized)?]),
        }
    }
}
