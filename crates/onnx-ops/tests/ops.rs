//! The operators through tract's whole pipeline (parse, type, optimise, plan, run), on one-node
//! ONNX graphs built here, fed at run time as users feed them.

use tract_onnx::pb;
use tract_onnx::prelude::*;

/// `(name, ONNX element type, dims)`; a negative dim is left symbolic.
type Io<'a> = (&'a str, i32, &'a [i64]);

const FLOAT: i32 = 1;
const INT64: i32 = 7;
const STRING: i32 = 8;

fn value_info((name, elem_type, dims): Io) -> pb::ValueInfoProto {
    use pb::{tensor_shape_proto::dimension::Value as D, type_proto::Value as T};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(T::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .enumerate()
                        .map(|(i, &d)| pb::tensor_shape_proto::Dimension {
                            value: Some(if d >= 0 {
                                D::DimValue(d)
                            } else {
                                D::DimParam(format!("{name}_{i}"))
                            }),
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

fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn attr_string(name: &str, s: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::String as i32,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A plan for the one-node graph `op(inputs) -> outputs`.
fn plan(
    op: &str,
    attributes: Vec<pb::AttributeProto>,
    inputs: &[Io],
    outputs: &[Io],
) -> TractResult<std::sync::Arc<TypedSimplePlan>> {
    let node = pb::NodeProto {
        input: inputs.iter().map(|i| i.0.to_string()).collect(),
        output: outputs.iter().map(|o| o.0.to_string()).collect(),
        name: "node".into(),
        op_type: op.into(),
        attribute: attributes,
        ..Default::default()
    };
    let proto = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 23,
        }],
        graph: Some(pb::GraphProto {
            node: vec![node],
            name: "g".into(),
            input: inputs.iter().copied().map(value_info).collect(),
            output: outputs.iter().copied().map(value_info).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut onnx = tract_onnx::onnx();
    vouch_onnx_ops::register(&mut onnx);
    onnx.parse(&proto, None)?
        .model
        .into_optimized()?
        .into_runnable()
}

fn f32s(shape: &[usize], values: &[f32]) -> TValue {
    Tensor::from_shape(shape, values).unwrap().into_tvalue()
}

fn i64s(shape: &[usize], values: &[i64]) -> TValue {
    Tensor::from_shape(shape, values).unwrap().into_tvalue()
}

fn values<T: Datum + Clone>(t: &TValue) -> Vec<T> {
    t.try_as_plain_ram()
        .unwrap()
        .as_slice::<T>()
        .unwrap()
        .to_vec()
}

#[test]
fn reduce_sum_takes_its_axes_at_run_time() {
    let x = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let keep = plan(
        "ReduceSum",
        vec![],
        &[("x", FLOAT, &[2, 3]), ("axes", INT64, &[1])],
        &[("y", FLOAT, &[-1, -1])],
    )
    .unwrap();
    // One plan, two axes, two output shapes.
    let y = keep.run(tvec![x.clone(), i64s(&[1], &[1])]).unwrap();
    assert_eq!(y[0].shape(), &[2, 1]);
    assert_eq!(values::<f32>(&y[0]), vec![6., 15.]);
    let y = keep.run(tvec![x.clone(), i64s(&[1], &[0])]).unwrap();
    assert_eq!(y[0].shape(), &[1, 3]);
    assert_eq!(values::<f32>(&y[0]), vec![5., 7., 9.]);

    let drop = plan(
        "ReduceSum",
        vec![attr_int("keepdims", 0)],
        &[("x", FLOAT, &[2, 3]), ("axes", INT64, &[1])],
        &[("y", FLOAT, &[-1])],
    )
    .unwrap();
    let y = drop.run(tvec![x, i64s(&[1], &[-1])]).unwrap();
    assert_eq!(y[0].shape(), &[2]);
    assert_eq!(values::<f32>(&y[0]), vec![6., 15.]);
}

#[test]
fn reshape_and_slice_take_their_parameters_at_run_time() {
    let x = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let reshape = plan(
        "Reshape",
        vec![],
        &[("x", FLOAT, &[2, 3]), ("shape", INT64, &[2])],
        &[("y", FLOAT, &[-1, -1])],
    )
    .unwrap();
    let y = reshape.run(tvec![x.clone(), i64s(&[2], &[3, -1])]).unwrap();
    assert_eq!(y[0].shape(), &[3, 2]);

    // Negative and out-of-range bounds, valid ONNX, which tract's DynSlice mishandles.
    let slice = plan(
        "Slice",
        vec![],
        &[
            ("x", FLOAT, &[2, 3]),
            ("starts", INT64, &[1]),
            ("ends", INT64, &[1]),
            ("axes", INT64, &[1]),
        ],
        &[("y", FLOAT, &[-1, -1])],
    )
    .unwrap();
    let y = slice
        .run(tvec![
            x,
            i64s(&[1], &[-2]),
            i64s(&[1], &[100]),
            i64s(&[1], &[1])
        ])
        .unwrap();
    assert_eq!(y[0].shape(), &[2, 2]);
    assert_eq!(values::<f32>(&y[0]), vec![2., 3., 5., 6.]);
}

#[test]
fn losses_follow_the_reference() {
    // Scores already log-probabilities: loss = -x[n, target[n]], mean over the non-ignored.
    let nll = plan(
        "NegativeLogLikelihoodLoss",
        vec![attr_int("ignore_index", 2)],
        &[("x", FLOAT, &[3, 3]), ("t", INT64, &[3])],
        &[("loss", FLOAT, &[])],
    )
    .unwrap();
    let x = f32s(&[3, 3], &[-1., -2., -3., -4., -5., -6., -7., -8., -9.]);
    let loss = nll.run(tvec![x.clone(), i64s(&[3], &[0, 2, 1])]).unwrap();
    assert_eq!(values::<f32>(&loss[0]), vec![(1. + 8.) / 2.]);
    // A target outside the classes is an error, not a panic.
    assert!(nll.run(tvec![x, i64s(&[3], &[0, 5, 1])]).is_err());

    let sce = plan(
        "SoftmaxCrossEntropyLoss",
        vec![attr_string("reduction", "none")],
        &[("x", FLOAT, &[1, 2]), ("t", INT64, &[1])],
        &[("loss", FLOAT, &[1]), ("log_prob", FLOAT, &[1, 2])],
    )
    .unwrap();
    let out = sce
        .run(tvec![f32s(&[1, 2], &[0., 0.]), i64s(&[1], &[1])])
        .unwrap();
    let ln2 = std::f32::consts::LN_2;
    assert_eq!(values::<f32>(&out[0]), vec![ln2]);
    assert_eq!(values::<f32>(&out[1]), vec![-ln2, -ln2]);
}

#[test]
fn attention_is_softmax_of_scaled_scores_times_values() {
    let attention = plan(
        "Attention",
        vec![attr_int("is_causal", 1)],
        &[
            ("q", FLOAT, &[1, 1, 2, 2]),
            ("k", FLOAT, &[1, 1, 2, 2]),
            ("v", FLOAT, &[1, 1, 2, 1]),
        ],
        &[("y", FLOAT, &[1, 1, 2, 1])],
    )
    .unwrap();
    let q = f32s(&[1, 1, 2, 2], &[1., 0., 0., 1.]);
    let k = f32s(&[1, 1, 2, 2], &[1., 0., 0., 1.]);
    let v = f32s(&[1, 1, 2, 1], &[10., 20.]);
    let y = values::<f32>(&attention.run(tvec![q, k, v]).unwrap()[0]);
    // Row 0 sees only key 0 (causal); row 1 weighs keys 0 and 1 by softmax(0, 1/√2).
    let w1 = 1.0 / (1.0 + (-(0.5f64.sqrt())).exp());
    assert_eq!(y[0], 10.0);
    assert!(
        (y[1] as f64 - (10.0 * (1.0 - w1) + 20.0 * w1)).abs() < 1e-5,
        "{y:?}"
    );
}

#[test]
fn unique_outputs_distinct_values_first_occurrences_inverse_and_counts() {
    for (sorted, want) in [(1, vec![1i64, 2, 3]), (0, vec![2, 1, 3])] {
        let unique = plan(
            "Unique",
            vec![attr_int("sorted", sorted)],
            &[("x", INT64, &[5])],
            &[
                ("y", INT64, &[-1]),
                ("indices", INT64, &[-1]),
                ("inverse", INT64, &[5]),
                ("counts", INT64, &[-1]),
            ],
        )
        .unwrap();
        let out = unique.run(tvec![i64s(&[5], &[2, 1, 2, 3, 1])]).unwrap();
        assert_eq!(values::<i64>(&out[0]), want, "sorted={sorted}");
        let y = values::<i64>(&out[0]);
        let inverse = values::<i64>(&out[2]);
        let rebuilt: Vec<i64> = inverse.iter().map(|&i| y[i as usize]).collect();
        assert_eq!(rebuilt, vec![2, 1, 2, 3, 1]);
        assert_eq!(values::<i64>(&out[3]).iter().sum::<i64>(), 5);
    }
}

#[test]
fn string_split_pads_to_the_longest() {
    let split = plan(
        "StringSplit",
        vec![attr_string("delimiter", ",")],
        &[("x", STRING, &[2])],
        &[("pieces", STRING, &[2, -1]), ("counts", INT64, &[2])],
    )
    .unwrap();
    let x = Tensor::from(tract_ndarray::arr1(&["a,b,c".to_string(), "d".to_string()]));
    let out = split.run(tvec![x.into_tvalue()]).unwrap();
    assert_eq!(out[0].shape(), &[2, 3]);
    assert_eq!(values::<String>(&out[0]), vec!["a", "b", "c", "d", "", ""]);
    assert_eq!(values::<i64>(&out[1]), vec![3, 1]);
}
