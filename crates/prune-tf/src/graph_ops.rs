//! Small graph-building helpers over `&mut Graph`, usable on graphs built in Rust and on graphs
//! loaded from a SavedModel alike.

use crate::backend::tf_error;
use prune_core::Result;
use tensorflow::{DataType, Graph, Operation, Output, Shape};

/// An f32 placeholder of the given shape.
pub fn placeholder(graph: &mut Graph, name: &str, shape: &[u64]) -> Result<Operation> {
    let mut nd = graph.new_operation("Placeholder", name).map_err(tf_error)?;
    nd.set_attr_type("dtype", DataType::Float)
        .map_err(tf_error)?;
    let dims: Vec<Option<i64>> = shape.iter().map(|&d| Some(d as i64)).collect();
    nd.set_attr_shape("shape", &Shape::from(Some(dims)))
        .map_err(tf_error)?;
    nd.finish().map_err(tf_error)
}

/// `a * b` (f32).
pub fn mul(graph: &mut Graph, name: &str, a: Output, b: Output) -> Result<Operation> {
    let mut nd = graph.new_operation("Mul", name).map_err(tf_error)?;
    nd.add_input(a);
    nd.add_input(b);
    nd.set_attr_type("T", DataType::Float).map_err(tf_error)?;
    nd.finish().map_err(tf_error)
}

/// Reads a resource variable (VarHandleOp) as f32.
pub fn read_variable(graph: &mut Graph, name: &str, handle: Output) -> Result<Operation> {
    let mut nd = graph
        .new_operation("ReadVariableOp", name)
        .map_err(tf_error)?;
    nd.add_input(handle);
    nd.set_attr_type("dtype", DataType::Float)
        .map_err(tf_error)?;
    nd.finish().map_err(tf_error)
}

/// Assigns `value` to a variable: `Assign` for a ref variable (VariableV2), `AssignVariableOp`
/// for a resource variable.
pub fn assign(graph: &mut Graph, name: &str, var: &VarHandle, value: Output) -> Result<Operation> {
    assign_after(graph, name, var, value, &[])
}

/// [`assign`] that runs only after `after` (control dependencies).
pub fn assign_after(
    graph: &mut Graph,
    name: &str,
    var: &VarHandle,
    value: Output,
    after: &[Operation],
) -> Result<Operation> {
    let (op, target, attr) = match var {
        VarHandle::Ref(o) => ("Assign", o.clone(), "T"),
        VarHandle::Resource(o) => ("AssignVariableOp", o.clone(), "dtype"),
    };
    let mut nd = graph.new_operation(op, name).map_err(tf_error)?;
    nd.add_input(target);
    nd.add_input(value);
    for op in after {
        nd.add_control_input(op);
    }
    nd.set_attr_type(attr, DataType::Float).map_err(tf_error)?;
    nd.finish().map_err(tf_error)
}

/// Reads a resource variable only after `after` has run.
pub fn read_variable_after(
    graph: &mut Graph,
    name: &str,
    handle: Output,
    after: &[Operation],
) -> Result<Operation> {
    let mut nd = graph
        .new_operation("ReadVariableOp", name)
        .map_err(tf_error)?;
    nd.add_input(handle);
    for op in after {
        nd.add_control_input(op);
    }
    nd.set_attr_type("dtype", DataType::Float)
        .map_err(tf_error)?;
    nd.finish().map_err(tf_error)
}

/// How a variable is held in a graph.
#[derive(Debug, Clone)]
pub enum VarHandle {
    /// A `VariableV2` (graphs built with the tensorflow crate's `Variable`).
    Ref(Output),
    /// A `VarHandleOp` resource (Keras / TF2 SavedModels).
    Resource(Output),
}
