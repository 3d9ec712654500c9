"""CoLaNet as an ONNX graph (opset 17), built node by node from :class:`CoLaNetWeights`.

The graph is the same computation as :func:`inference.colanet.forward_numpy`::

    features [batch, 256] ─ MatMul w_hidden ─ Add b_hidden ─ v
    v · Cast(Greater(v, threshold), float)                   ─ h   (fire past threshold)
    h ─ MatMul w_offer   ─ Add b_offer   ─ Sigmoid ─ offer_scores   [batch, 64]
    h ─ MatMul w_variant ─ Add b_variant ─ Sigmoid ─ variant_scores [batch, 64]
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import onnx
from onnx import TensorProto, helper, numpy_helper

from domain.bidding.model_shape import FEATURE_DIMS, OFFER_SLOTS, VARIANT_SLOTS
from inference._atomic import write_atomically
from inference.colanet import CoLaNetWeights

ONNX_FILE: Final = "colanet-v1.onnx"
OPSET: Final = 17
# The IR version that goes with opset 17; newer onnx packages default to a higher one that
# older onnxruntime builds (on GPU hosts, say) refuse to load.
IR_VERSION: Final = 8

INPUT_NAME: Final = "features"
OFFER_OUTPUT: Final = "offer_scores"
VARIANT_OUTPUT: Final = "variant_scores"
_BATCH_DIM: Final = "batch"


def onnx_path(models_dir: Path) -> Path:
    return models_dir / ONNX_FILE


def build_model(weights: CoLaNetWeights) -> onnx.ModelProto:
    """The checked ONNX model of ``weights``, with a dynamic batch dimension."""
    initializers = [
        numpy_helper.from_array(weights.w_hidden, "w_hidden"),
        numpy_helper.from_array(weights.b_hidden, "b_hidden"),
        numpy_helper.from_array(weights.threshold, "threshold"),
        numpy_helper.from_array(weights.w_offer, "w_offer"),
        numpy_helper.from_array(weights.b_offer, "b_offer"),
        numpy_helper.from_array(weights.w_variant, "w_variant"),
        numpy_helper.from_array(weights.b_variant, "b_variant"),
    ]
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "w_hidden"], ["input_current"]),
        helper.make_node("Add", ["input_current", "b_hidden"], ["membrane"]),
        helper.make_node("Greater", ["membrane", "threshold"], ["fired"]),
        helper.make_node("Cast", ["fired"], ["fired_mask"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["membrane", "fired_mask"], ["hidden"]),
        helper.make_node("MatMul", ["hidden", "w_offer"], ["offer_current"]),
        helper.make_node("Add", ["offer_current", "b_offer"], ["offer_logits"]),
        helper.make_node("Sigmoid", ["offer_logits"], [OFFER_OUTPUT]),
        helper.make_node("MatMul", ["hidden", "w_variant"], ["variant_current"]),
        helper.make_node("Add", ["variant_current", "b_variant"], ["variant_logits"]),
        helper.make_node("Sigmoid", ["variant_logits"], [VARIANT_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "colanet_v1",
        inputs=[
            helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [_BATCH_DIM, FEATURE_DIMS])
        ],
        outputs=[
            helper.make_tensor_value_info(
                OFFER_OUTPUT, TensorProto.FLOAT, [_BATCH_DIM, OFFER_SLOTS]
            ),
            helper.make_tensor_value_info(
                VARIANT_OUTPUT, TensorProto.FLOAT, [_BATCH_DIM, VARIANT_SLOTS]
            ),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="campaign-express",
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(weights: CoLaNetWeights, models_dir: Path) -> Path:
    """Build the graph of ``weights`` and write it atomically to ``models_dir/colanet-v1.onnx``."""
    path = onnx_path(models_dir)
    write_atomically(path, build_model(weights).SerializeToString())
    return path
