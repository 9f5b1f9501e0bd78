//! Helpers shared by the engine's integration tests: hand-built ONNX protobuf pieces.

use tract_onnx::pb;

/// A tensor declaration `name: elem_type[dims]` for a graph's inputs and outputs.
pub fn value_info(name: &str, elem_type: i32, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::{tensor_shape_proto::dimension::Value as D, type_proto::Value as T};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(T::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| pb::tensor_shape_proto::Dimension {
                            value: Some(D::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
