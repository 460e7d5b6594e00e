// Row gathers from resident datasets: a batch is gathered by index on the device, so datasets
// stay on the GPU at 1 byte (u8) or 2 bytes (f16) per value. CPU twins:
// src/backend/cpu/gather.rs; slots, parameter block and grid: src/backend/ops/gather.rs.
// One invocation per output element; the grid is 2-D so more than 65535 workgroups fit.
// Binding i is the op's slot i - 1, named as the slot (see backend::Op::slots); a slot that
// two entry points bind differently is qualified by its entry point (gather_rows_f32_data).

struct GatherParams {
    n: u32, // rows * cols
    rows: u32,
    cols: u32,
    src_rows: u32,
}

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<storage, read> data: array<u32>;
@group(0) @binding(1) var<storage, read> gather_rows_f32_data: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// The flat source index of output element i of a row gather (cols values per row, src_rows
// source rows, the row's index in idx), or NO_ROW when that index is past the source.
const NO_ROW: u32 = 0xFFFFFFFFu;
fn gather_source(i: u32) -> u32 {
    let src = idx[i / p.cols];
    if (src >= p.src_rows) { return NO_ROW; }
    return src * p.cols + i % p.cols;
}

// out[r, :] = data[idx[r], :] / 255; data is a u8 matrix (src_rows x cols) packed
// little-endian 4 bytes per word. Keeps datasets resident on the GPU at 1 byte per pixel;
// batches are gathered by index.
@compute @workgroup_size(256)
fn gather_rows_u8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let byte = gather_source(i);
    if (byte == NO_ROW) { out[i] = 0.0; return; }
    let word = data[byte / 4u];
    out[i] = f32((word >> ((byte % 4u) * 8u)) & 0xFFu) / 255.0;
}

// out[r, :] = data[idx[r], :] from a resident f32 dataset of src_rows rows of cols values
// (e.g. standardised sensor windows, steps x channels per row); an index past it gives zeros.
@compute @workgroup_size(256)
fn gather_rows_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let k = gather_source(i);
    if (k == NO_ROW) { out[i] = 0.0; return; }
    out[i] = gather_rows_f32_data[k];
}

// An IEEE half (low 16 bits of h) as f32, exactly, with integer operations only
// (unpack2x16float needs a capability some downlevel adapters lack).
fn half_to_f32(h: u32) -> f32 {
    let e = (h >> 10u) & 0x1Fu;
    let m = h & 0x3FFu;
    var v: f32;
    if (e == 0u) {
        v = f32(m) * exp2(-24.0); // zero and subnormals
    } else if (e == 31u) {
        v = bitcast<f32>(0x7F800000u | (m << 13u)); // inf, nan
    } else {
        v = bitcast<f32>(((e + 112u) << 23u) | (m << 13u));
    }
    return select(v, -v, (h & 0x8000u) != 0u);
}

// As gather_rows_f32 from a resident f16 dataset: value k of the flat matrix is half k % 2 (low
// half first) of word k / 2.
@compute @workgroup_size(256)
fn gather_rows_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let k = gather_source(i);
    if (k == NO_ROW) { out[i] = 0.0; return; }
    out[i] = half_to_f32(data[k / 2u] >> ((k % 2u) * 16u));
}
