//! SVMClassifier and SVMRegressor, as libsvm computes them and onnxruntime runs them.
//!
//! Kernels, in f32 after casting the input to f32: LINEAR `x·s`, POLY `(γ x·s + c)^d`, RBF
//! `exp(-γ Σ(x-s)²)`, SIGMOID `tanh(γ x·s + c)`; dot products and squared distances summed in
//! feature order, unfused; exp, tanh and pow from the portable `libm`. The classifier's
//! one-vs-one decision values are summed in f64 (as onnxruntime does), each class pair votes, the
//! label is the class with most votes (first on ties); with `prob_a`/`prob_b` the pairwise
//! Platt probabilities are coupled into class probabilities by libsvm's iterative method (Wu,
//! Lin and Weng 2004, onnxruntime's f32 version step for step).

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceOp;
use tract_onnx::tract_hir::internal::DimLike;

use crate::attrs::Attrs;
use crate::error::{MlResult, input_error};
use crate::labels::{ClassLabels, Label};
use crate::linear::dot;
use crate::op::{Kernel, as_f32, batch_dims, batch_of, check_numeric, inference_op, tensor};
use crate::transform::{PostTransform, logistic};

/// Kernel function and its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SvmKernel {
    Linear,
    Poly { gamma: f32, coef0: f32, degree: f32 },
    Rbf { gamma: f32 },
    Sigmoid { gamma: f32, coef0: f32 },
}

impl SvmKernel {
    fn read(attrs: &Attrs) -> MlResult<SvmKernel> {
        let params = attrs.floats("kernel_params")?.unwrap_or_default();
        if !(params.is_empty() || params.len() == 3) {
            return Err(attrs.error(
                "kernel_params",
                format!(
                    "has {} values; expected [gamma, coef0, degree]",
                    params.len()
                ),
            ));
        }
        let p = |i: usize| params.get(i).copied().unwrap_or(0.0);
        let (gamma, coef0, degree) = (p(0), p(1), p(2));
        Ok(match attrs.string("kernel_type")?.as_deref() {
            None | Some("LINEAR") => SvmKernel::Linear,
            Some("POLY") => SvmKernel::Poly {
                gamma,
                coef0,
                degree,
            },
            Some("RBF") => SvmKernel::Rbf { gamma },
            Some("SIGMOID") => SvmKernel::Sigmoid { gamma, coef0 },
            Some(other) => {
                return Err(attrs.error(
                    "kernel_type",
                    format!("is {other:?}; expected LINEAR, POLY, RBF or SIGMOID"),
                ));
            }
        })
    }

    /// `K(x, s)`.
    #[inline]
    fn eval(self, x: &[f32], s: &[f32]) -> f32 {
        match self {
            SvmKernel::Linear => dot(x, s),
            SvmKernel::Poly {
                gamma,
                coef0,
                degree,
            } => {
                let v = gamma * dot(x, s) + coef0;
                if degree == 2.0 {
                    v * v
                } else if degree == 3.0 {
                    v * v * v
                } else {
                    libm::powf(v, degree)
                }
            }
            SvmKernel::Rbf { gamma } => {
                let mut sum = 0.0f32;
                for (a, b) in x.iter().zip(s) {
                    let d = a - b;
                    sum += d * d;
                }
                libm::expf(-gamma * sum)
            }
            SvmKernel::Sigmoid { gamma, coef0 } => libm::tanhf(gamma * dot(x, s) + coef0),
        }
    }
}

/// Support vectors (`count` rows of `width` features).
#[derive(Clone, Debug)]
struct SupportVectors {
    values: Vec<f32>,
    count: usize,
    width: usize,
}

impl SupportVectors {
    fn read(attrs: &Attrs, count: usize) -> MlResult<SupportVectors> {
        let values = attrs
            .floats("support_vectors")?
            .unwrap_or_default()
            .to_vec();
        if count == 0 || values.is_empty() || !values.len().is_multiple_of(count) {
            return Err(attrs.error(
                "support_vectors",
                format!(
                    "has {} values, not a positive multiple of the {count} support vectors",
                    values.len()
                ),
            ));
        }
        Ok(SupportVectors {
            width: values.len() / count,
            values,
            count,
        })
    }

    fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.values.chunks_exact(self.width)
    }
}

fn check_width(op: &'static str, width: &TDim, want: usize) -> MlResult<()> {
    if let Ok(w) = width.to_usize()
        && w != want
    {
        return Err(input_error(
            op,
            format!("the input has {w} features per row; the model expects {want}"),
        ));
    }
    Ok(())
}

/// Most classes an SVMClassifier may have: one-vs-one scoring keeps a classes x classes matrix
/// per row, so this bounds that allocation (4096² f32 = 64 MiB), whatever the file claims.
const MAX_CLASSES: usize = 4096;

const CLASSIFIER: &str = "SVMClassifier";
const REGRESSOR: &str = "SVMRegressor";

/// How an SVMClassifier scores.
#[derive(Clone, Debug)]
enum Mode {
    /// libsvm: support vectors, one-vs-one.
    Svc {
        vectors: SupportVectors,
        /// First support vector of each class.
        starts: Vec<usize>,
        per_class: Vec<usize>,
        /// Platt scaling `(A, B)` per class pair, when probabilities are output.
        platt: Option<(Vec<f32>, Vec<f32>)>,
    },
    /// liblinear: one coefficient row per class.
    Linear { width: usize },
}

/// A parsed SVMClassifier: labels `[N]`, scores `[N, K]` (f32).
#[derive(Clone, Debug)]
pub(crate) struct SvmClassifier {
    kernel: SvmKernel,
    mode: Mode,
    coefficients: Vec<f32>,
    rho: Vec<f32>,
    labels: ClassLabels,
    post: PostTransform,
    weights_all_positive: bool,
}

pub(crate) fn parse_classifier(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok(inference_op(SvmClassifier::read(&Attrs::new(
        CLASSIFIER, node,
    ))?))
}

impl SvmClassifier {
    fn read(attrs: &Attrs) -> MlResult<SvmClassifier> {
        let labels = ClassLabels::read(attrs, "classlabels_ints", "classlabels_strings")?;
        let n = labels.len();
        if !(2..=MAX_CLASSES).contains(&n) {
            return Err(attrs.model_error(format!(
                "has {n} class label(s); an SVM needs 2 to {MAX_CLASSES}"
            )));
        }
        let pairs = n * (n - 1) / 2;
        let coefficients = attrs.floats("coefficients")?.unwrap_or_default().to_vec();
        let rho = attrs.floats("rho")?.unwrap_or_default().to_vec();
        let post = PostTransform::from_attr(attrs)?;
        let per_class = attrs.ints("vectors_per_class")?.unwrap_or_default();
        let mut kernel = SvmKernel::read(attrs)?;
        let mut total = 0usize;
        let mut starts = Vec::with_capacity(per_class.len());
        for (i, &v) in per_class.iter().enumerate() {
            if v < 0 || v > u32::MAX as i64 {
                return Err(attrs.error(&format!("vectors_per_class[{i}]"), format!("is {v}")));
            }
            starts.push(total);
            total = total.saturating_add(v as usize);
        }
        let mode = if total > 0 {
            attrs.check_len("vectors_per_class", Some(per_class.len()), n, "class")?;
            let vectors = SupportVectors::read(attrs, total)?;
            attrs.check_len(
                "coefficients",
                Some(coefficients.len()),
                (n - 1).saturating_mul(total),
                "support vector in each of the classes-1 dual coefficient rows",
            )?;
            attrs.check_len("rho", Some(rho.len()), pairs, "pair of classes")?;
            let a = attrs.floats("prob_a")?.map(<[f32]>::to_vec);
            let b = attrs.floats("prob_b")?.map(<[f32]>::to_vec);
            let platt = match (a, b) {
                (None, None) => None,
                (Some(a), b) if !a.is_empty() => {
                    let b = b.unwrap_or_default();
                    attrs.check_len("prob_a", Some(a.len()), pairs, "pair of classes")?;
                    attrs.check_len("prob_b", Some(b.len()), pairs, "pair of classes")?;
                    Some((a, b))
                }
                (a, b)
                    if a.as_ref().is_none_or(Vec::is_empty)
                        && b.as_ref().is_none_or(Vec::is_empty) =>
                {
                    None
                }
                _ => return Err(attrs.error("prob_b", "must have as many values as prob_a")),
            };
            if n == 2 && platt.is_none() && post == PostTransform::Probit {
                return Err(attrs.unsupported(
                    "PROBIT on a two-class SVM without probabilities: onnxruntime writes only the \
                     first score column then; apply the transform after the classifier",
                ));
            }
            Mode::Svc {
                vectors,
                starts,
                per_class: per_class.iter().map(|&v| v as usize).collect(),
                platt,
            }
        } else {
            kernel = SvmKernel::Linear;
            if coefficients.is_empty() || !coefficients.len().is_multiple_of(n) {
                return Err(attrs.error(
                    "coefficients",
                    format!(
                        "has {} values, not a positive multiple of the {n} classes",
                        coefficients.len()
                    ),
                ));
            }
            if rho.is_empty() {
                return Err(attrs.error("rho", "is required and missing"));
            }
            Mode::Linear {
                width: coefficients.len() / n,
            }
        };
        Ok(SvmClassifier {
            kernel,
            mode,
            weights_all_positive: coefficients.iter().all(|&c| c >= 0.0),
            coefficients,
            rho,
            labels,
            post,
        })
    }

    fn width(&self) -> usize {
        match &self.mode {
            Mode::Svc { vectors, .. } => vectors.width,
            Mode::Linear { width } => *width,
        }
    }

    fn score_columns(&self) -> usize {
        let n = self.labels.len();
        match &self.mode {
            Mode::Svc { platt: None, .. } if n > 2 => n * (n - 1) / 2,
            Mode::Svc { platt: None, .. } => 2,
            _ => n,
        }
    }

    /// One row: its label and its scores in `out`. `kernels`, `probs` and `q` are scratch.
    fn row(&self, x: &[f32], out: &mut [f32], scratch: &mut Scratch) -> Label {
        let n = self.labels.len();
        match &self.mode {
            Mode::Linear { width } => {
                for (k, w) in self.coefficients.chunks_exact(*width).enumerate() {
                    out[k] = dot(x, w) + self.rho[0];
                }
                let mut best = 0;
                for k in 1..n {
                    if out[best] < out[k] {
                        best = k;
                    }
                }
                let max_weight = out[best];
                let label = if n == 2
                    && ((self.weights_all_positive && max_weight >= 0.5)
                        || (max_weight > 0.0 && !self.weights_all_positive))
                {
                    Label::Class(1)
                } else {
                    Label::Class(best)
                };
                self.post.apply_row(out);
                label
            }
            Mode::Svc {
                vectors,
                starts,
                per_class,
                platt,
            } => {
                let kernels = &mut scratch.kernels;
                kernels.clear();
                kernels.extend(vectors.rows().map(|s| self.kernel.eval(x, s)));
                let votes = &mut scratch.votes;
                votes.clear();
                votes.resize(n, 0);
                let pair_scores = &mut scratch.pairs;
                pair_scores.clear();
                let total = vectors.count;
                for i in 0..n - 1 {
                    for j in i + 1..n {
                        let mut sum = 0f64;
                        let (si, sj) = (starts[i], starts[j]);
                        let ci = &self.coefficients[(j - 1) * total..j * total];
                        let cj = &self.coefficients[i * total..(i + 1) * total];
                        for m in si..si + per_class[i] {
                            sum += (ci[m] * kernels[m]) as f64;
                        }
                        for m in sj..sj + per_class[j] {
                            sum += (cj[m] * kernels[m]) as f64;
                        }
                        sum += self.rho[pair_scores.len()] as f64;
                        pair_scores.push(sum as f32);
                        votes[if sum > 0.0 { i } else { j }] += 1;
                    }
                }
                // First class with the most votes.
                let mut best = 0;
                for k in 1..n {
                    if votes[best] < votes[k] {
                        best = k;
                    }
                }
                match platt {
                    Some((a, b)) => {
                        let r = &mut scratch.pairwise;
                        r.clear();
                        r.resize(n * n, 0.0);
                        let mut idx = 0;
                        for i in 0..n - 1 {
                            for j in i + 1..n {
                                let p = 1.0 - logistic(pair_scores[idx] * a[idx] + b[idx]);
                                // Clamped as C++'s std::max/std::min do (NaN stays NaN).
                                let p = if p < 1.0e-7 { 1.0e-7 } else { p };
                                let p = if 1.0 - 1.0e-7 < p { 1.0 - 1.0e-7 } else { p };
                                r[i * n + j] = p;
                                r[j * n + i] = 1.0 - p;
                                idx += 1;
                            }
                        }
                        multiclass_probability(n, r, out, &mut scratch.q, &mut scratch.qp);
                        self.post.apply_row(out);
                    }
                    None if n > 2 => {
                        out.copy_from_slice(pair_scores);
                        self.post.apply_row(out);
                    }
                    None => {
                        let s = pair_scores[0];
                        if self.post == PostTransform::None {
                            out.copy_from_slice(&[-s, s]);
                        } else {
                            // onnxruntime's binary convention: no transform, [1 - s, s].
                            out.copy_from_slice(&[1.0 - s, s]);
                        }
                    }
                }
                Label::Class(best)
            }
        }
    }
}

/// Per-call scratch buffers, reused across rows.
#[derive(Default)]
struct Scratch {
    kernels: Vec<f32>,
    votes: Vec<u32>,
    pairs: Vec<f32>,
    pairwise: Vec<f32>,
    q: Vec<f32>,
    qp: Vec<f32>,
}

/// libsvm's `multiclass_probability` (pairwise coupling), in f32 as onnxruntime computes it:
/// `r[i*k+j]` is P(class i | i or j); writes the k class probabilities to `p`.
fn multiclass_probability(k: usize, r: &[f32], p: &mut [f32], q: &mut Vec<f32>, qp: &mut Vec<f32>) {
    q.clear();
    q.resize(k * k, 0.0);
    qp.clear();
    qp.resize(k, 0.0);
    let kf = k as f32;
    let eps = 0.005f32 / kf;
    for i in 0..k {
        p[i] = 1.0 / kf;
        for j in 0..i {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = q[j * k + i];
        }
        for j in i + 1..k {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = -r[j * k + i] * r[i * k + j];
        }
    }
    for _ in 0..100 {
        let mut pqp = 0f32;
        for i in 0..k {
            qp[i] = 0.0;
            for j in 0..k {
                qp[i] += q[i * k + j] * p[j];
            }
            pqp += p[i] * qp[i];
        }
        let mut max_error = 0f32;
        for &v in qp.iter() {
            let error = (v - pqp).abs();
            if error > max_error {
                max_error = error;
            }
        }
        if max_error < eps {
            break;
        }
        for i in 0..k {
            let diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2.0 * qp[i])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
}

impl Kernel for SvmClassifier {
    fn name(&self) -> &'static str {
        CLASSIFIER
    }

    fn n_outputs(&self) -> usize {
        2
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        check_numeric(CLASSIFIER, inputs[0])?;
        Ok(tvec!(self.labels.datum_type(), DatumType::F32))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        let (n, c) = batch_dims(CLASSIFIER, &inputs[0])?;
        check_width(CLASSIFIER, &c, self.width())?;
        Ok(tvec!(
            tvec!(n.clone()),
            tvec!(n, self.score_columns().into())
        ))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let (rows, width) = batch_of(CLASSIFIER, inputs[0])?;
        check_width(CLASSIFIER, &width.into(), self.width())?;
        let x = as_f32(CLASSIFIER, inputs[0])?;
        let cols = self.score_columns();
        let mut out = vec![0f32; rows * cols];
        let mut labels = Vec::with_capacity(rows);
        let mut scratch = Scratch::default();
        for (r, o) in out.chunks_exact_mut(cols).enumerate() {
            labels.push(self.row(&x[r * width..(r + 1) * width], o, &mut scratch));
        }
        Ok(tvec!(
            self.labels.output(&labels)?,
            tensor(&[rows, cols], out)?
        ))
    }
}

/// A parsed SVMRegressor: `[N, 1]` f32.
#[derive(Clone, Debug)]
pub(crate) struct SvmRegressor {
    kernel: SvmKernel,
    /// `None` in linear mode (no support vectors: the coefficients are the weights).
    vectors: Option<SupportVectors>,
    coefficients: Vec<f32>,
    rho: f32,
    one_class: bool,
}

pub(crate) fn parse_regressor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(REGRESSOR, node);
    let count = attrs.int("n_supports")?.unwrap_or(0);
    if count < 0 || count > u32::MAX as i64 {
        return Err(attrs.error("n_supports", format!("is {count}")).into());
    }
    let coefficients = attrs.floats("coefficients")?.unwrap_or_default().to_vec();
    if coefficients.is_empty() {
        return Err(attrs
            .error("coefficients", "is required and missing")
            .into());
    }
    let rho = match attrs.floats("rho")? {
        Some([r, ..]) => *r,
        _ => return Err(attrs.error("rho", "is required and missing").into()),
    };
    if PostTransform::from_attr(&attrs)? != PostTransform::None {
        return Err(attrs
            .unsupported("a post_transform on SVMRegressor, which onnxruntime ignores; apply it after the regressor")
            .into());
    }
    let (kernel, vectors) = if count > 0 {
        let vectors = SupportVectors::read(&attrs, count as usize)?;
        attrs.check_len(
            "coefficients",
            Some(coefficients.len()),
            vectors.count,
            "support vector",
        )?;
        (SvmKernel::read(&attrs)?, Some(vectors))
    } else {
        (SvmKernel::Linear, None)
    };
    Ok(inference_op(SvmRegressor {
        kernel,
        vectors,
        coefficients,
        rho,
        one_class: attrs.int("one_class")?.unwrap_or(0) != 0,
    }))
}

impl SvmRegressor {
    fn width(&self) -> usize {
        self.vectors
            .as_ref()
            .map_or(self.coefficients.len(), |v| v.width)
    }
}

impl Kernel for SvmRegressor {
    fn name(&self) -> &'static str {
        REGRESSOR
    }

    fn output_types(&self, inputs: &[DatumType]) -> MlResult<TVec<DatumType>> {
        check_numeric(REGRESSOR, inputs[0])?;
        Ok(tvec!(DatumType::F32))
    }

    fn output_shapes(&self, inputs: &[TVec<TDim>]) -> MlResult<TVec<TVec<TDim>>> {
        let (n, c) = batch_dims(REGRESSOR, &inputs[0])?;
        check_width(REGRESSOR, &c, self.width())?;
        Ok(tvec!(tvec!(n, 1.into())))
    }

    fn eval(&self, inputs: &[&Tensor]) -> MlResult<TVec<Tensor>> {
        let (rows, width) = batch_of(REGRESSOR, inputs[0])?;
        check_width(REGRESSOR, &width.into(), self.width())?;
        let x = as_f32(REGRESSOR, inputs[0])?;
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            let row = &x[r * width..(r + 1) * width];
            let mut y = match &self.vectors {
                Some(vectors) => {
                    let mut s = 0f32;
                    for (sv, c) in vectors.rows().zip(&self.coefficients) {
                        s += self.kernel.eval(row, sv) * c;
                    }
                    s + self.rho
                }
                None => dot(row, &self.coefficients) + self.rho,
            };
            if self.one_class {
                y = if y > 0.0 { 1.0 } else { -1.0 };
            }
            out.push(y);
        }
        Ok(tvec!(tensor(&[rows, 1], out)?))
    }
}
