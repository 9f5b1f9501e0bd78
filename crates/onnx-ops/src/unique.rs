//! `Unique` (opset 11): the distinct elements of a tensor, or its distinct slices along an
//! axis, sorted (lexicographically for slices) or in order of first occurrence, with the first
//! occurrence of each, the inverse mapping and the counts, as numpy's `unique` gives them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::rust_op::{Kernel, boxed, coords, gather_elements, output_slots, strides};

/// The `Unique` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unique {
    axis: Option<i64>,
    sorted: bool,
    /// Which of `Y`, `indices`, `inverse_indices`, `counts` the node produces.
    outputs: [bool; 4],
    /// The number of distinct elements or slices, known when the node runs.
    count: Symbol,
}

/// Builds `Unique`.
pub fn unique(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let outs = output_slots(node, 4);
    boxed(Unique {
        axis: node.get_attr_opt::<i64>("axis")?,
        sorted: node.get_attr_opt::<i64>("sorted")?.unwrap_or(1) != 0,
        outputs: [
            outs[0].is_some(),
            outs[1].is_some(),
            outs[2].is_some(),
            outs[3].is_some(),
        ],
        count: ctx.template.symbols.new_with_prefix("unique"),
    })
}

/// One element, ordered as numpy orders it (floats by total order).
#[derive(Debug, Clone)]
enum Key {
    Int(i128),
    Float(f64),
    Text(String),
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => a.cmp(b),
            (Key::Float(a), Key::Float(b)) => a.total_cmp(b),
            (Key::Text(a), Key::Text(b)) => a.cmp(b),
            // One tensor has one element type.
            _ => Ordering::Equal,
        }
    }
}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Key {}

fn keys(t: &Tensor) -> TractResult<Vec<Key>> {
    let dt = t.datum_type();
    if dt == String::datum_type() {
        let v = t.try_as_plain_ram()?.as_slice::<String>()?;
        return Ok(v.iter().cloned().map(Key::Text).collect());
    }
    if dt.is_float() {
        let v = t.cast_to::<f64>()?;
        return Ok(v
            .try_as_plain_ram()?
            .as_slice::<f64>()?
            .iter()
            .map(|&x| Key::Float(x))
            .collect());
    }
    if dt == u64::datum_type() {
        let v = t.try_as_plain_ram()?.as_slice::<u64>()?;
        return Ok(v.iter().map(|&x| Key::Int(x as i128)).collect());
    }
    ensure!(
        dt.is_integer() || dt == bool::datum_type(),
        "Unique: elements of type {dt:?}"
    );
    let v = t.cast_to::<i64>()?;
    Ok(v.try_as_plain_ram()?
        .as_slice::<i64>()?
        .iter()
        .map(|&x| Key::Int(x as i128))
        .collect())
}

impl Unique {
    fn axis(&self, rank: usize) -> TractResult<Option<usize>> {
        self.axis
            .map(|a| {
                let r = rank as i64;
                ensure!((-r..r).contains(&a), "Unique: axis {a} for rank {rank}");
                Ok(a.rem_euclid(r) as usize)
            })
            .transpose()
    }
}

impl Kernel for Unique {
    fn name(&self) -> &'static str {
        "Unique"
    }

    fn nboutputs(&self) -> usize {
        self.outputs.iter().filter(|&&o| o).count()
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs[0];
        let axis = self.axis(x.rank())?;
        let count = self.count.to_dim();
        let (y, n): (TVec<TDim>, TDim) = match axis {
            None => (tvec![count.clone()], x.shape.volume()),
            Some(a) => {
                let mut shape = x.shape.to_tvec();
                let n = shape[a].clone();
                shape[a] = count.clone();
                (shape, n)
            }
        };
        let facts = [
            x.datum_type.fact(y),
            i64::datum_type().fact(tvec![count.clone()]),
            i64::datum_type().fact(tvec![n]),
            i64::datum_type().fact(tvec![count]),
        ];
        Ok(facts
            .into_iter()
            .zip(self.outputs)
            .filter(|(_, o)| *o)
            .map(|(f, _)| f)
            .collect())
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let shape = x.shape();
        let axis = self.axis(x.rank())?;
        let all = keys(x)?;
        // Slice j: the flat indices of its elements, in row-major order.
        let (n, slice_of): (usize, Vec<Vec<usize>>) = match axis {
            None => (all.len(), (0..all.len()).map(|i| vec![i]).collect()),
            Some(a) => {
                let mut slices = vec![vec![]; shape[a]];
                for i in 0..all.len() {
                    slices[coords(i, shape)[a]].push(i);
                }
                (shape[a], slices)
            }
        };
        let mut distinct: BTreeMap<Vec<Key>, (usize, i64)> = BTreeMap::new();
        for (j, members) in slice_of.iter().enumerate() {
            let key: Vec<Key> = members.iter().map(|&i| all[i].clone()).collect();
            distinct.entry(key).or_insert((j, 0)).1 += 1;
        }
        let mut order: Vec<(&Vec<Key>, usize, i64)> = distinct
            .iter()
            .map(|(k, &(first, count))| (k, first, count))
            .collect();
        if !self.sorted {
            order.sort_by_key(|&(_, first, _)| first);
        }
        let position: BTreeMap<&Vec<Key>, usize> = order
            .iter()
            .enumerate()
            .map(|(p, (k, _, _))| (*k, p))
            .collect();
        let u = order.len();
        let y = match axis {
            None => {
                let sources: Vec<Option<usize>> = order.iter().map(|(_, f, _)| Some(*f)).collect();
                gather_elements(x, &[u], &sources)?
            }
            Some(a) => {
                let mut out_shape = shape.to_vec();
                out_shape[a] = u;
                let st = strides(shape);
                let total: usize = out_shape.iter().product();
                let sources: Vec<Option<usize>> = (0..total)
                    .map(|o| {
                        let mut c = coords(o, &out_shape);
                        c[a] = order[c[a]].1;
                        Some(c.iter().zip(&st).map(|(c, s)| c * s).sum())
                    })
                    .collect();
                gather_elements(x, &out_shape, &sources)?
            }
        };
        let firsts: Vec<i64> = order.iter().map(|(_, f, _)| *f as i64).collect();
        let inverse: Vec<i64> = slice_of
            .iter()
            .map(|members| {
                let key: Vec<Key> = members.iter().map(|&i| all[i].clone()).collect();
                position[&key] as i64
            })
            .collect();
        let counts: Vec<i64> = order.iter().map(|(_, _, c)| *c).collect();
        let outputs = [
            y.into_tvalue(),
            Tensor::from_shape(&[u], &firsts)?.into_tvalue(),
            Tensor::from_shape(&[n], &inverse)?.into_tvalue(),
            Tensor::from_shape(&[u], &counts)?.into_tvalue(),
        ];
        Ok(outputs
            .into_iter()
            .zip(self.outputs)
            .filter(|(_, o)| *o)
            .map(|(t, _)| t)
            .collect())
    }
}
