//! A minimal protocol-buffer writer for the ONNX messages the exporter emits (ModelProto,
//! GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto and their parts).
//!
//! Why hand-written: the ONNX schema is stable and the subset needed is small (varints,
//! length-delimited fields, fixed32 floats), so a few dozen lines beat a protobuf code generator
//! (protoc at build time) or a large generated crate. Field numbers are those of onnx.proto
//! (onnx/onnx, IR version 8); each writer below names its message.

/// One protobuf message being written (fields appended in any order).
#[derive(Default, Clone)]
pub struct Msg(pub Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

impl Msg {
    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, ((field as u64) << 3) | wire as u64);
    }
    /// A varint field (int32, int64, enum); negative values as 10-byte two's complement.
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, 0);
        varint(&mut self.0, v as u64);
        self
    }
    /// A length-delimited field: bytes, a string or an embedded message.
    pub fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    pub fn str(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    pub fn msg(&mut self, field: u32, m: &Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }
    /// A float field (fixed32).
    pub fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A packed repeated int64 field.
    pub fn packed_ints(&mut self, field: u32, vs: &[i64]) -> &mut Self {
        let mut b = Vec::new();
        for &v in vs {
            varint(&mut b, v as u64);
        }
        self.bytes(field, &b)
    }
}

/// TensorProto.DataType values used here.
pub const FLOAT: i64 = 1;
pub const INT64: i64 = 7;

/// TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian).
pub fn tensor(name: &str, dims: &[usize], data_type: i64, raw: &[u8]) -> Msg {
    let mut t = Msg::default();
    let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    if !dims.is_empty() {
        t.packed_ints(1, &dims);
    }
    t.int(2, data_type).str(8, name).bytes(9, raw);
    t
}

pub fn f32_tensor(name: &str, dims: &[usize], v: &[f32]) -> Msg {
    tensor(name, dims, FLOAT, bytemuck::cast_slice(v))
}

pub fn i64_tensor(name: &str, dims: &[usize], v: &[i64]) -> Msg {
    let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    tensor(name, dims, INT64, &raw)
}

/// A dimension of a value's shape: a fixed size or a named, free one (the batch).
#[derive(Clone, Debug)]
pub enum Dim {
    Fixed(usize),
    Named(&'static str),
}

/// ValueInfoProto: name (1), type (2) = TypeProto { tensor_type (1) = { elem_type (1),
/// shape (2) = TensorShapeProto { dim (1) = { dim_value (1) | dim_param (2) } } } }.
pub fn value_info(name: &str, elem_type: i64, dims: &[Dim]) -> Msg {
    let mut shape = Msg::default();
    for d in dims {
        let mut dm = Msg::default();
        match d {
            Dim::Fixed(n) => dm.int(1, *n as i64),
            Dim::Named(s) => dm.str(2, s),
        };
        shape.msg(1, &dm);
    }
    let mut tt = Msg::default();
    tt.int(1, elem_type).msg(2, &shape);
    let mut ty = Msg::default();
    ty.msg(1, &tt);
    let mut vi = Msg::default();
    vi.str(1, name).msg(2, &ty);
    vi
}

/// An attribute value of a node.
#[derive(Clone, Debug)]
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Tensor(Vec<usize>, Vec<f32>),
    TensorI64(Vec<usize>, Vec<i64>),
}

/// AttributeProto: name (1), f (2), i (3), t (5), ints (8), type (20: FLOAT 1, INT 2, TENSOR 4,
/// INTS 7).
pub fn attribute(name: &str, a: &Attr) -> Msg {
    let mut m = Msg::default();
    m.str(1, name);
    match a {
        Attr::Int(i) => m.int(3, *i).int(20, 2),
        Attr::Float(f) => m.float(2, *f).int(20, 1),
        Attr::Ints(v) => m.packed_ints(8, v).int(20, 7),
        Attr::Tensor(d, v) => m.msg(5, &f32_tensor("", d, v)).int(20, 4),
        Attr::TensorI64(d, v) => m.msg(5, &i64_tensor("", d, v)).int(20, 4),
    };
    m
}

/// NodeProto: input (1), output (2), name (3), op_type (4), attribute (5).
pub fn node(op: &str, name: &str, inputs: &[String], outputs: &[String], attrs: &[(&str, Attr)]) -> Msg {
    let mut m = Msg::default();
    for i in inputs {
        m.str(1, i);
    }
    for o in outputs {
        m.str(2, o);
    }
    m.str(3, name).str(4, op);
    for (n, a) in attrs {
        m.msg(5, &attribute(n, a));
    }
    m
}
