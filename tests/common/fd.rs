//! The finite-difference checker shared by the gradient tests (method and tolerances are
//! explained in tests/gradcheck.rs).

// ---------------------------------------------------------------------------------------------
// Checker
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub h: f64,
    pub atol: f64,
    pub rtol: f64,
}

/// The default step and tolerance (module comment).
pub const TOL: Tol = Tol { h: 1e-2, atol: 2e-4, rtol: 2e-3 };

impl Tol {
    /// Absolute tolerance widened for a loss multiplied by `scale` (its round-off scales too).
    pub fn scaled(self, scale: f32) -> Tol {
        Tol { atol: self.atol * (scale.abs() as f64).max(1.0), ..self }
    }
}

/// Central differences of `f` at `x`, one element at a time, in f64.
pub fn numeric_grad(x: &[f32], h: f64, f: &dyn Fn(&[f32]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let p = (x[i] as f64 + h) as f32;
            let m = (x[i] as f64 - h) as f32;
            assert!(p > m, "step {h} vanishes at x = {}", x[i]);
            xp[i] = p;
            let lp = f(&xp);
            xp[i] = m;
            let lm = f(&xp);
            xp[i] = x[i];
            (lp - lm) / (p as f64 - m as f64)
        })
        .collect()
}

/// Compares a numeric and an analytic gradient; `Ok` carries the worst |diff| / bound ratio
/// (<= 1 means accepted), `Err` names the worst element.
pub fn compare(what: &str, num: &[f64], ana: &[f32], tol: Tol) -> Result<f64, String> {
    assert_eq!(num.len(), ana.len(), "{what}: length mismatch");
    let mut worst = (0usize, 0.0f64);
    let mut failures = 0;
    for (i, (&n, &a)) in num.iter().zip(ana).enumerate() {
        let a = a as f64;
        let bound = tol.atol + tol.rtol * n.abs().max(a.abs());
        let ratio = if n.is_finite() && a.is_finite() { (n - a).abs() / bound } else { f64::INFINITY };
        if ratio > 1.0 {
            failures += 1;
        }
        if ratio > worst.1 || i == 0 {
            worst = (i, ratio);
        }
    }
    let (i, ratio) = worst;
    if failures > 0 {
        Err(format!(
            "{what}: {failures} of {} elements fail; worst at {i}: numeric {:.6e} analytic {:.6e} (|diff| {:.3e} > {:.3e} = {} + {} * max|g|; h = {})",
            num.len(),
            num[i],
            ana[i],
            (num[i] - ana[i] as f64).abs(),
            tol.atol + tol.rtol * num[i].abs().max(ana[i].abs() as f64),
            tol.atol,
            tol.rtol,
            tol.h
        ))
    } else {
        Ok(ratio)
    }
}

pub fn fd_check(what: &str, x: &[f32], analytic: &[f32], tol: Tol, f: &dyn Fn(&[f32]) -> f64) -> Result<f64, String> {
    compare(what, &numeric_grad(x, tol.h, f), analytic, tol)
}

/// Runs a list of checks inside one test, panicking with every failure and printing the worst
/// ratio seen (run with `--nocapture` to see the margins).
pub struct Report {
    name: &'static str,
    worst: f64,
    worst_case: String,
    cases: usize,
    errors: Vec<String>,
}

impl Report {
    pub fn new(name: &'static str) -> Self {
        Report { name, worst: 0.0, worst_case: String::new(), cases: 0, errors: Vec::new() }
    }
    pub fn check(&mut self, what: &str, x: &[f32], analytic: &[f32], tol: Tol, f: &dyn Fn(&[f32]) -> f64) {
        self.cases += 1;
        match fd_check(what, x, analytic, tol, f) {
            Ok(r) if r >= self.worst => {
                self.worst = r;
                self.worst_case = what.to_string();
            }
            Ok(_) => {}
            Err(e) => self.errors.push(e),
        }
    }
    pub fn finish(self) {
        eprintln!("{}: {} gradient checks, worst |diff|/bound = {:.3} ({})", self.name, self.cases, self.worst, self.worst_case);
        let shown = self.errors.iter().take(12).cloned().collect::<Vec<_>>().join("\n");
        assert!(self.errors.is_empty(), "{}: {} of {} checks fail (first 12 shown):\n{shown}", self.name, self.errors.len(), self.cases);
    }
}
