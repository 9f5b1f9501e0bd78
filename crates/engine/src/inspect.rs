//! What a model file declares: its signature, opsets and operators, read from the ONNX protobuf
//! without running anything.

use std::collections::BTreeMap;

use serde::Serialize;
use tract_onnx::pb::{
    self, GraphProto, ModelProto, tensor_shape_proto::dimension::Value as DimValue,
    type_proto::Value as TypeValue,
};
use vouch_types::{DType, ModelId};

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(u64),
    /// A named symbolic size (e.g. `batch`): any size, the same wherever the name appears.
    Symbol(String),
    /// Unknown: any size.
    #[serde(serialize_with = "serialize_any")]
    Any,
}

fn serialize_any<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("?")
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbol(s) => f.write_str(s),
            Dim::Any => f.write_str("?"),
        }
    }
}

/// A declared model input or output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TensorSpec {
    /// Tensor name.
    pub name: String,
    /// Element type, `None` when the model declares a type Vouch doesn't support.
    pub dtype: Option<DType>,
    /// The ONNX element type code as declared (for error messages about unsupported types).
    pub onnx_elem_type: i32,
    /// Declared shape; `None` when the model gives no shape.
    pub shape: Option<Vec<Dim>>,
}

impl TensorSpec {
    /// `float32[batch,3]`-style summary.
    pub fn signature(&self) -> String {
        let dtype = self.dtype.map_or_else(
            || format!("onnx-type-{}", self.onnx_elem_type),
            |d| d.to_string(),
        );
        match &self.shape {
            Some(dims) => format!(
                "{dtype}[{}]",
                dims.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => format!("{dtype}[…]"),
        }
    }
}

/// An operator as ONNX names it: domain (empty for the default `ai.onnx`) and type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct OpName {
    /// Operator domain, e.g. `""` or `ai.onnx.ml`.
    pub domain: String,
    /// Operator type, e.g. `Conv`.
    pub op_type: String,
}

impl std::fmt::Display for OpName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.domain.is_empty() || self.domain == "ai.onnx" {
            f.write_str(&self.op_type)
        } else {
            write!(f, "{}:{}", self.domain, self.op_type)
        }
    }
}

/// Operator usage and support.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpUse {
    /// The operator.
    #[serde(flatten)]
    pub op: OpName,
    /// Nodes using it, subgraphs included.
    pub count: usize,
    /// Whether the engine can run it.
    pub supported: bool,
}

/// Everything `vouch model inspect` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// Content id of the file.
    pub id: ModelId,
    /// Size of the file in bytes.
    pub size_bytes: u64,
    /// ONNX IR version.
    pub ir_version: i64,
    /// Opsets imported, by domain (`""` is the default domain).
    pub opsets: BTreeMap<String, i64>,
    /// Producer name and version, as the exporter wrote them.
    pub producer: String,
    /// Graph inputs that are not initializers.
    pub inputs: Vec<TensorSpec>,
    /// Graph outputs.
    pub outputs: Vec<TensorSpec>,
    /// Operator histogram, most used first.
    pub ops: Vec<OpUse>,
    /// Number of nodes, subgraphs included.
    pub node_count: usize,
    /// Number of weights (initializer elements).
    pub parameter_count: u64,
    /// Whether every operator is supported.
    pub all_ops_supported: bool,
}

/// Domains whose operators the engine implements (tract resolves operators by type name only, so
/// an operator from any other domain would be run as a same-named standard one: refused instead).
/// `ai.onnx.preview.training` contributes only its optimizers (Adagrad, Adam, Momentum), whose
/// names no other known domain uses.
pub(crate) const KNOWN_DOMAINS: [&str; 4] =
    ["", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training"];

pub(crate) fn spec(v: &pb::ValueInfoProto) -> TensorSpec {
    let (elem_type, shape) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(TypeValue::TensorType(t)) => (
            t.elem_type,
            t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(DimValue::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as u64),
                        Some(DimValue::DimParam(p)) if !p.is_empty() => Dim::Symbol(p.clone()),
                        _ => Dim::Any,
                    })
                    .collect()
            }),
        ),
        None => (0, None),
    };
    TensorSpec {
        name: v.name.clone(),
        dtype: u32::try_from(elem_type).ok().and_then(DType::from_code),
        onnx_elem_type: elem_type,
        shape,
    }
}

fn walk_graph(g: &GraphProto, visit: &mut dyn FnMut(&pb::NodeProto)) {
    for node in &g.node {
        visit(node);
        for attr in &node.attribute {
            if let Some(sub) = &attr.g {
                walk_graph(sub, visit);
            }
            for sub in &attr.graphs {
                walk_graph(sub, visit);
            }
        }
    }
}

pub(crate) fn declared_inputs(g: &GraphProto) -> Vec<TensorSpec> {
    let initialized: std::collections::HashSet<&str> =
        g.initializer.iter().map(|t| t.name.as_str()).collect();
    g.input
        .iter()
        .filter(|i| !initialized.contains(i.name.as_str()))
        .map(spec)
        .collect()
}

/// Reads a model's declarations. `supported` says whether the engine implements an operator.
pub(crate) fn inspect(
    bytes: &[u8],
    proto: &ModelProto,
    supported: &dyn Fn(&OpName) -> bool,
) -> ModelInfo {
    let empty = GraphProto::default();
    let graph = proto.graph.as_ref().unwrap_or(&empty);
    let mut histogram: BTreeMap<OpName, usize> = BTreeMap::new();
    let mut node_count = 0;
    walk_graph(graph, &mut |n| {
        node_count += 1;
        let op = OpName {
            domain: n.domain.clone(),
            op_type: n.op_type.clone(),
        };
        *histogram.entry(op).or_default() += 1;
    });
    let mut ops: Vec<OpUse> = histogram
        .into_iter()
        .map(|(op, count)| OpUse {
            supported: supported(&op),
            op,
            count,
        })
        .collect();
    ops.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.op.cmp(&b.op)));
    let parameter_count = graph
        .initializer
        .iter()
        .map(|t| t.dims.iter().map(|&d| d.max(0) as u64).product::<u64>())
        .sum();
    let producer = [
        proto.producer_name.as_str(),
        proto.producer_version.as_str(),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" ");
    ModelInfo {
        id: ModelId::of_bytes(bytes),
        size_bytes: bytes.len() as u64,
        ir_version: proto.ir_version,
        opsets: proto
            .opset_import
            .iter()
            .map(|o| (o.domain.clone(), o.version))
            .collect(),
        producer,
        inputs: declared_inputs(graph),
        outputs: graph.output.iter().map(spec).collect(),
        all_ops_supported: ops.iter().all(|o| o.supported),
        ops,
        node_count,
        parameter_count,
    }
}

/// Whether any tensor in the model keeps its data in an external file, which the engine
/// refuses: a model is one self-contained file, the one its id names.
pub(crate) fn uses_external_data(proto: &ModelProto) -> bool {
    fn tensor_external(t: &pb::TensorProto) -> bool {
        t.data_location == Some(pb::tensor_proto::DataLocation::External as i32)
            || !t.external_data.is_empty()
    }
    fn graph_external(g: &GraphProto) -> bool {
        g.initializer.iter().any(tensor_external)
            || g.node.iter().any(|n| {
                n.attribute.iter().any(|a| {
                    a.t.as_ref().is_some_and(tensor_external)
                        || a.tensors.iter().any(tensor_external)
                        || a.g.as_ref().is_some_and(graph_external)
                        || a.graphs.iter().any(graph_external)
                })
            })
    }
    proto.graph.as_ref().is_some_and(graph_external)
}
