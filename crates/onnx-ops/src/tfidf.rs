//! `TfIdfVectorizer` (opset 9): counts the n-grams of a pool (integers or strings) in each row,
//! with skips between tokens, and weighs the counts as `TF`, `IDF` or `TFIDF`, as ONNX's
//! reference (and onnxruntime) do.

use std::collections::BTreeMap;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, to_i64};

/// A token of the pool or the input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Token {
    Int(i64),
    Text(String),
}

/// A node of the n-gram trie: the n-gram id ending here (0: none) and the longer n-grams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Part {
    id: usize,
    leaves: BTreeMap<Token, Part>,
}

/// How counts become outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Tf,
    Idf,
    TfIdf,
}

/// The `TfIdfVectorizer` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TfIdf {
    mode: Mode,
    min_gram: usize,
    max_gram: usize,
    max_skip: usize,
    ngram_indexes: Vec<usize>,
    /// Weights as `f32` bits.
    weights: Vec<u32>,
    output_size: usize,
    trie: Part,
    strings: bool,
}

/// Builds `TfIdfVectorizer`.
pub fn tfidf(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let mode = match node.get_attr::<&str>("mode")? {
        "TF" => Mode::Tf,
        "IDF" => Mode::Idf,
        "TFIDF" => Mode::TfIdf,
        other => bail!("TfIdfVectorizer: unknown mode {other:?}"),
    };
    let count = |name: &str| -> TractResult<usize> {
        usize::try_from(node.get_attr::<i64>(name)?)
            .with_context(|| format!("TfIdfVectorizer: {name}"))
    };
    let (min_gram, max_gram, max_skip) = (
        count("min_gram_length")?,
        count("max_gram_length")?,
        count("max_skip_count")?,
    );
    ensure!(
        1 <= min_gram && min_gram <= max_gram,
        "TfIdfVectorizer: gram lengths"
    );
    let ngram_counts: Vec<usize> = node
        .get_attr_vec::<i64>("ngram_counts")?
        .iter()
        .map(|&c| c.max(0) as usize)
        .collect();
    let ngram_indexes: Vec<usize> = node
        .get_attr_vec::<i64>("ngram_indexes")?
        .iter()
        .map(|&i| usize::try_from(i).context("TfIdfVectorizer: negative ngram index"))
        .collect::<TractResult<_>>()?;
    let pool: Vec<Token> = match node.get_attr_opt_vec::<i64>("pool_int64s")? {
        Some(ints) if !ints.is_empty() => ints.into_iter().map(Token::Int).collect(),
        _ => node
            .get_attr_opt_vec::<String>("pool_strings")?
            .unwrap_or_default()
            .into_iter()
            .map(Token::Text)
            .collect(),
    };
    let strings = matches!(pool.first(), Some(Token::Text(_)));
    let weights = node
        .get_attr_opt_vec::<f32>("weights")?
        .unwrap_or_default()
        .iter()
        .map(|w| w.to_bits())
        .collect();
    let mut trie = Part::default();
    let mut ngram_id = 1;
    for (i, &start) in ngram_counts.iter().enumerate() {
        let size = i + 1;
        let end = ngram_counts.get(i + 1).copied().unwrap_or(pool.len());
        ensure!(
            start <= end && end <= pool.len(),
            "TfIdfVectorizer: ngram_counts"
        );
        let grams = (end - start) / size;
        if size < min_gram || size > max_gram {
            ngram_id += grams;
            continue;
        }
        for gram in pool[start..start + grams * size].chunks(size) {
            let mut part = &mut trie;
            for token in gram {
                part = part.leaves.entry(token.clone()).or_default();
            }
            part.id = ngram_id;
            ngram_id += 1;
        }
    }
    ensure!(
        ngram_id - 1 <= ngram_indexes.len(),
        "TfIdfVectorizer: fewer ngram_indexes than n-grams"
    );
    let output_size = ngram_indexes.iter().max().map_or(0, |m| m + 1);
    boxed(TfIdf {
        mode,
        min_gram,
        max_gram,
        max_skip,
        ngram_indexes,
        weights,
        output_size,
        trie,
        strings,
    })
}

impl TfIdf {
    fn count_row(&self, row: &[Token], counts: &mut [u64]) {
        let mut start_size = self.min_gram;
        for skip in 1..=self.max_skip + 1 {
            for start in 0..row.len() {
                if start + skip * (start_size - 1) >= row.len() {
                    break;
                }
                let mut part = &self.trie;
                let mut size = 1;
                let mut item = start;
                while !part.leaves.is_empty() && size <= self.max_gram && item < row.len() {
                    let Some(next) = part.leaves.get(&row[item]) else {
                        break;
                    };
                    if size >= start_size && next.id != 0 {
                        counts[self.ngram_indexes[next.id - 1]] += 1;
                    }
                    part = next;
                    size += 1;
                    item += skip;
                }
            }
            // Unigrams are counted once: skips don't change them.
            if start_size == 1 {
                start_size += 1;
                if start_size > self.max_gram {
                    break;
                }
            }
        }
    }
}

impl Kernel for TfIdf {
    fn name(&self) -> &'static str {
        "TfIdfVectorizer"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        let dims: TVec<TDim> = match x.rank() {
            0 | 1 => tvec![self.output_size.to_dim()],
            2 => tvec![x.shape[0].clone(), self.output_size.to_dim()],
            r => bail!("TfIdfVectorizer: input of rank {r}"),
        };
        Ok(tvec![f32::datum_type().fact(dims)])
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let tokens: Vec<Token> = if x.datum_type() == String::datum_type() {
            ensure!(
                self.strings,
                "TfIdfVectorizer: string input for an integer pool"
            );
            x.try_as_plain_ram()?
                .as_slice::<String>()?
                .iter()
                .cloned()
                .map(Token::Text)
                .collect()
        } else {
            to_i64(x)?.into_iter().map(Token::Int).collect()
        };
        let (rows, shape) = match x.shape() {
            [] | [_] => (1, vec![self.output_size]),
            [b, _] => (*b, vec![*b, self.output_size]),
            s => bail!("TfIdfVectorizer: input of shape {s:?}"),
        };
        let width = tokens.len().checked_div(rows).unwrap_or(0);
        let mut counts = vec![0u64; rows * self.output_size];
        if !self.trie.leaves.is_empty() {
            for r in 0..rows {
                let out = &mut counts[r * self.output_size..][..self.output_size];
                self.count_row(&tokens[r * width..][..width], out);
            }
        }
        let weight = |i: usize| self.weights.get(i).map(|&w| f32::from_bits(w));
        let values: Vec<f32> = counts
            .iter()
            .enumerate()
            .map(|(p, &c)| {
                let i = p % self.output_size.max(1);
                match (self.mode, self.weights.is_empty()) {
                    (Mode::Tf, _) | (Mode::TfIdf, true) => c as f32,
                    (Mode::Idf, true) => (c > 0) as u8 as f32,
                    (Mode::Idf, false) => {
                        if c > 0 {
                            weight(i).unwrap_or(0.0)
                        } else {
                            0.0
                        }
                    }
                    (Mode::TfIdf, false) => weight(i).unwrap_or(0.0) * c as f32,
                }
            })
            .collect();
        Ok(tvec![Tensor::from_shape(&shape, &values)?.into_tvalue()])
    }
}
