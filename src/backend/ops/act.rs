//! Activations, shared by the elementwise kernels, the GEMM epilogue and batch norm (the WGSL
//! side is shaders/activation.wgsl, prepended to those files; `ACT` is a pipeline constant).

/// Activation applied elementwise (also as the GEMM epilogue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    Identity = 0,
    Relu = 1,
    Sigmoid = 2,
    Tanh = 3,
    Softplus = 4,
}

impl Act {
    pub const ALL: [Act; 5] = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh, Act::Softplus];

    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::Identity => x,
            Act::Relu => x.max(0.0),
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Tanh => x.tanh(),
            Act::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// Derivative written in terms of the OUTPUT y = f(x), so a backward pass needs only
    /// the activations the forward pass kept (and the GEMM epilogue can fuse the forward).
    pub fn grad_from_output(self, y: f32) -> f32 {
        match self {
            Act::Identity => 1.0,
            Act::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Act::Sigmoid => y * (1.0 - y),
            Act::Tanh => 1.0 - y * y,
            // y = ln(1 + e^x)  =>  dy/dx = sigmoid(x) = 1 - e^{-y}
            Act::Softplus => -(-y).exp_m1(),
        }
    }
}
