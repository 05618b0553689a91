//! ONNX out: a [`DigitModel`] as a standard ONNX model (opset 17), for runtimes that are not
//! Burn (onnxruntime, tract, OpenCV, browsers). Burn imports ONNX but does not export it.
//!
//! The graph has one input, `images`, `float32 [batch, channels, side, side]` (the normalised
//! images [`MnistBatcher`](https://docs.rs/digitnet-data) makes: `(pixel / 255 - 0.1307) /
//! 0.3081`), and one output, `logits`, `float32 [batch, classes]`; `batch` is a dynamic
//! dimension. Each convolution block becomes `Conv`, `BatchNormalization` (when it has one),
//! `MaxPool` and `Relu`; the dense layers `Flatten` and `Gemm`s with `Relu` between them.
//! Dropout is left out: the file is for inference. Weights are stored in full precision under
//! the module's own parameter names (`blocks.0.conv.weight`, `linears.1.bias`, ...).

mod proto;

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use prost::Message;

use crate::cnn::{Cnn, ConvBlock};
use crate::error::ModelError;
use crate::mlp::Mlp;
use crate::model::{DigitModel, ModelConfig};
use proto::{
    AttributeProto, Dimension, DimensionValue, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
    attribute_type,
};

/// The ONNX operator set the graph uses.
pub const OPSET: i64 = 17;
/// Name of the graph's input.
pub const INPUT: &str = "images";
/// Name of the graph's output.
pub const OUTPUT: &str = "logits";
/// Name of the dynamic batch dimension.
pub const BATCH: &str = "batch";

impl<B: Backend> DigitModel<B> {
    /// This model as an ONNX file's bytes (see the [module documentation](self)). `config` is
    /// the configuration it was built from, which gives the input's shape. A layer ONNX cannot
    /// express as exported here is an [`ModelError::Export`] naming it.
    pub fn to_onnx(&self, config: &ModelConfig) -> Result<Vec<u8>, ModelError> {
        let (channels, side, classes) = match config {
            ModelConfig::Cnn(c) => (c.in_channels, c.image_size, c.num_classes),
            ModelConfig::Mlp(m) => (1, side_of(m.input_size)?, m.num_classes),
        };
        let mut graph = Graph::default();
        let logits = match self {
            DigitModel::Cnn(cnn) => cnn_nodes(cnn, &mut graph)?,
            DigitModel::Mlp(mlp) => mlp_nodes(mlp, &mut graph)?,
        };
        graph.rename_output(&logits);
        let model = ModelProto {
            ir_version: 8,
            producer_name: "digitnet".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: "digit classifier: normalised images in, class logits out".into(),
            graph: Some(GraphProto {
                node: graph.nodes,
                name: "digitnet".into(),
                initializer: graph.weights,
                input: vec![value_info(
                    INPUT,
                    &[batch(), fixed(channels), fixed(side), fixed(side)],
                )],
                output: vec![value_info(OUTPUT, &[batch(), fixed(classes)])],
            }),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
        };
        Ok(model.encode_to_vec())
    }
}

/// The side of the square image an MLP with `inputs` inputs reads.
fn side_of(inputs: usize) -> Result<usize, ModelError> {
    let side = (inputs as f64).sqrt().round() as usize;
    match side * side == inputs {
        true => Ok(side),
        false => Err(ModelError::Export(format!(
            "an MLP with {inputs} inputs does not read square images"
        ))),
    }
}

/// Nodes and weights being collected, and the name of the value computed last.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    weights: Vec<TensorProto>,
    last: usize,
}

impl Graph {
    /// Appends `op` on `inputs` with `attributes`; returns the name of its output.
    fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        self.last += 1;
        let output = format!("{}_{}", op.to_lowercase(), self.last);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: output.clone(),
            op_type: op.into(),
            attribute: attributes,
        });
        output
    }

    /// Stores `tensor` as the weight `name` (in `float32`); returns the name.
    fn weight<const D: usize, B: Backend>(
        &mut self,
        name: &str,
        tensor: Tensor<B, D>,
    ) -> Result<String, ModelError> {
        let dims = tensor.dims().iter().map(|&d| d as i64).collect();
        let values: Vec<f32> = tensor
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| ModelError::Export(format!("{name}: {e:?}")))?;
        self.weights.push(TensorProto {
            dims,
            data_type: proto::FLOAT,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        Ok(name.into())
    }

    fn param<const D: usize, B: Backend>(
        &mut self,
        name: &str,
        p: &Param<Tensor<B, D>>,
    ) -> Result<String, ModelError> {
        self.weight(name, p.val())
    }

    /// Makes the last node write the graph's output.
    fn rename_output(&mut self, from: &str) {
        if let Some(node) = self.nodes.iter_mut().rev().find(|n| n.output[0] == from) {
            node.output[0] = OUTPUT.into();
        }
    }
}

fn cnn_nodes<B: Backend>(cnn: &Cnn<B>, graph: &mut Graph) -> Result<String, ModelError> {
    let mut x = INPUT.to_string();
    for (i, block) in cnn.blocks().iter().enumerate() {
        x = block_nodes(block, &format!("blocks.{i}"), &x, graph)?;
    }
    let x = graph.node("Flatten", &[&x], vec![int("axis", 1)]);
    dense_nodes(cnn.linears(), &x, graph)
}

fn mlp_nodes<B: Backend>(mlp: &Mlp<B>, graph: &mut Graph) -> Result<String, ModelError> {
    let x = graph.node("Flatten", &[INPUT], vec![int("axis", 1)]);
    dense_nodes(mlp.linears(), &x, graph)
}

fn block_nodes<B: Backend>(
    block: &ConvBlock<B>,
    name: &str,
    x: &str,
    graph: &mut Graph,
) -> Result<String, ModelError> {
    let (conv, norm, pool) = block.layers();
    let mut x = conv_node(conv, &format!("{name}.conv"), x, graph)?;
    if let Some(norm) = norm {
        x = norm_node(norm, &format!("{name}.norm"), &x, graph)?;
    }
    if let Some(pool) = pool {
        x = pool_node(pool, &format!("{name}.pool"), &x, graph)?;
    }
    Ok(graph.node("Relu", &[&x], vec![]))
}

fn conv_node<B: Backend>(
    conv: &Conv2d<B>,
    name: &str,
    x: &str,
    graph: &mut Graph,
) -> Result<String, ModelError> {
    let pads = pads(&conv.padding, name)?;
    let mut inputs = vec![
        x.to_string(),
        graph.param(&format!("{name}.weight"), &conv.weight)?,
    ];
    if let Some(bias) = &conv.bias {
        inputs.push(graph.param(&format!("{name}.bias"), bias)?);
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    Ok(graph.node(
        "Conv",
        &inputs,
        vec![
            ints("kernel_shape", &conv.kernel_size),
            ints("strides", &conv.stride),
            ints("dilations", &conv.dilation),
            ints("pads", &pads),
            int("group", conv.groups as i64),
        ],
    ))
}

fn norm_node<B: Backend>(
    norm: &BatchNorm<B>,
    name: &str,
    x: &str,
    graph: &mut Graph,
) -> Result<String, ModelError> {
    let inputs = [
        x.to_string(),
        graph.param(&format!("{name}.gamma"), &norm.gamma)?,
        graph.param(&format!("{name}.beta"), &norm.beta)?,
        graph.weight(&format!("{name}.running_mean"), norm.running_mean.value())?,
        graph.weight(&format!("{name}.running_var"), norm.running_var.value())?,
    ];
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    Ok(graph.node(
        "BatchNormalization",
        &inputs,
        vec![float("epsilon", norm.epsilon as f32)],
    ))
}

fn pool_node(
    pool: &MaxPool2d,
    name: &str,
    x: &str,
    graph: &mut Graph,
) -> Result<String, ModelError> {
    let pads = pads(&pool.padding, name)?;
    Ok(graph.node(
        "MaxPool",
        &[x],
        vec![
            ints("kernel_shape", &pool.kernel_size),
            ints("strides", &pool.stride),
            ints("dilations", &pool.dilation),
            ints("pads", &pads),
            int("ceil_mode", i64::from(pool.ceil_mode)),
        ],
    ))
}

/// Burn's padding as ONNX's `pads` (begin of each axis, then end: top, left, bottom, right).
fn pads(padding: &PaddingConfig2d, layer: &str) -> Result<[usize; 4], ModelError> {
    match *padding {
        PaddingConfig2d::Valid => Ok([0; 4]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Ok([top, left, bottom, right]),
        PaddingConfig2d::Same => Err(ModelError::Export(format!(
            "{layer}: \"same\" padding is not exported; use explicit padding"
        ))),
    }
}

fn dense_nodes<B: Backend>(
    linears: &[Linear<B>],
    x: &str,
    graph: &mut Graph,
) -> Result<String, ModelError> {
    let mut x = x.to_string();
    for (j, linear) in linears.iter().enumerate() {
        if j > 0 {
            x = graph.node("Relu", &[&x], vec![]);
        }
        let name = format!("linears.{j}");
        // Burn's weight is [in, out]: `Gemm` computes x * W + b with it as it is.
        let mut inputs = vec![
            x.clone(),
            graph.param(&format!("{name}.weight"), &linear.weight)?,
        ];
        if let Some(bias) = &linear.bias {
            inputs.push(graph.param(&format!("{name}.bias"), bias)?);
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        x = graph.node("Gemm", &inputs, vec![]);
    }
    Ok(x)
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: value,
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: values.iter().map(|&v| v as i64).collect(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: value,
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

fn batch() -> Dimension {
    Dimension {
        value: Some(DimensionValue::DimParam(BATCH.into())),
    }
}

fn fixed(size: usize) -> Dimension {
    Dimension {
        value: Some(DimensionValue::DimValue(size as i64)),
    }
}

fn value_info(name: &str, dims: &[Dimension]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: proto::FLOAT,
                shape: Some(TensorShapeProto { dim: dims.to_vec() }),
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use burn_ndarray::NdArray;

    use super::*;
    use crate::MlpConfig;

    #[test]
    fn same_padding_is_an_export_error_naming_the_layer() {
        let error = pads(&PaddingConfig2d::Same, "blocks.1.conv").unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot export to ONNX: blocks.1.conv: \"same\" padding is not exported; use explicit padding"
        );
        assert_eq!(
            pads(&PaddingConfig2d::Explicit(1, 2, 3, 4), "c").unwrap(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn an_mlp_without_square_images_is_an_export_error() {
        let config = ModelConfig::Mlp(MlpConfig::new(vec![8]).with_input_size(50));
        let model = config.init::<NdArray>(&Default::default()).unwrap();
        let error = model.to_onnx(&config).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot export to ONNX: an MLP with 50 inputs does not read square images"
        );
    }
}
