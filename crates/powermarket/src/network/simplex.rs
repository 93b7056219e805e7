//! A dense, bounded-variable revised primal simplex for the small LPs of one
//! network hour (tens of rows, about a hundred columns).
//!
//! `min c·x  s.t.  A x = b,  lo <= x <= hi` with every bound finite. Phase 1
//! starts from one artificial column per row (the structural columns at
//! their lower bounds) and minimises the artificials; phase 2 the costs. The
//! basis inverse is kept explicitly (m x m), updated by one Gauss-Jordan
//! pivot per iteration and recomputed from scratch every [`REFACTOR`]
//! iterations and at the end, so that the reported values and duals come
//! from a fresh factorisation of the final basis.
//!
//! Pivoting is deterministic: Dantzig's rule (the largest scaled reduced
//! cost, lowest index on ties), and after a run of degenerate pivots Bland's
//! rule (the lowest improving index) until progress resumes. The arithmetic
//! is plain sequential IEEE float64 (no threads, no fused multiply-add), so
//! the same problem gives the same basis, values and duals on every run,
//! thread and machine.

// Dense linear algebra reads best with explicit row and column indices.
#![allow(clippy::needless_range_loop)]

use crate::error::MarketError;

/// Iterations between two fresh factorisations of the basis.
const REFACTOR: usize = 100;
/// Degenerate pivots in a row after which Bland's rule takes over.
const DEGENERATE_RUN: usize = 30;

/// An LP in computational form, its columns stored sparse (`m` rows).
#[derive(Clone, Debug, Default)]
pub struct Lp {
    pub m: usize,
    pub n: usize,
    /// Column j's nonzeros are `rows[start[j]..start[j + 1]]`, `vals[..]`.
    start: Vec<usize>,
    rows: Vec<u32>,
    vals: Vec<f64>,
    pub b: Vec<f64>,
    pub c: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    /// Value of each column when nonbasic at the start (its lower bound
    /// unless set): a value inside the bounds makes it a free nonbasic
    /// column that can move either way.
    pub init: Vec<f64>,
}

impl Lp {
    /// Reset to an `m`-row LP without columns (keeps the memory).
    pub fn reset(&mut self, m: usize) {
        self.m = m;
        self.n = 0;
        self.start.clear();
        self.start.push(0);
        self.rows.clear();
        self.vals.clear();
        self.b.clear();
        self.b.resize(m, 0.0);
        self.c.clear();
        self.lo.clear();
        self.hi.clear();
        self.init.clear();
    }

    /// Append a column with cost `c`, bounds `[lo, hi]` and the dense
    /// coefficients `col` (length `m`; zeros are dropped). Returns its index.
    pub fn push(&mut self, c: f64, lo: f64, hi: f64, col: impl IntoIterator<Item = f64>) -> usize {
        for (r, v) in col.into_iter().enumerate() {
            if v != 0.0 {
                self.rows.push(r as u32);
                self.vals.push(v);
            }
        }
        self.start.push(self.rows.len());
        self.c.push(c);
        self.lo.push(lo);
        self.hi.push(hi);
        self.init.push(lo);
        self.n += 1;
        self.n - 1
    }

    /// Reserve, fallibly, room for `m` rows, `n` columns and `mn` coefficients.
    pub fn try_reserve(&mut self, m: usize, n: usize, mn: usize) -> crate::error::Result<()> {
        reserve(&mut self.start, n + 1)?;
        reserve(&mut self.rows, mn)?;
        reserve(&mut self.vals, mn)?;
        reserve(&mut self.b, m)?;
        reserve(&mut self.c, n)?;
        reserve(&mut self.lo, n)?;
        reserve(&mut self.hi, n)?;
        reserve(&mut self.init, n)
    }

    /// Nonzeros of column j: (row, value).
    #[inline]
    fn col(&self, j: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let (a, b) = (self.start[j], self.start[j + 1]);
        self.rows[a..b]
            .iter()
            .zip(&self.vals[a..b])
            .map(|(&r, &v)| (r as usize, v))
    }
}

/// Grow `v`'s capacity to `len`, or a memory error.
pub(super) fn reserve<T>(v: &mut Vec<T>, len: usize) -> crate::error::Result<()> {
    v.try_reserve(len.saturating_sub(v.len()))
        .map_err(|_| MarketError::Memory {
            what: "the network clearing",
            bytes: len.saturating_mul(std::mem::size_of::<T>()),
        })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Status {
    #[default]
    Lower,
    Upper,
    /// Nonbasic strictly inside its bounds (a crash start): may move either way.
    Free,
    Basic,
}

/// Scratch and result of a solve: primal values `x` (structural columns
/// first), duals `y` (one per row: the change of the optimal cost per unit
/// increase of `b`), and which columns are basic.
#[derive(Clone, Debug, Default)]
pub struct Simplex {
    /// Values of the structural columns, then of the artificials.
    pub x: Vec<f64>,
    /// Row duals of the final basis.
    pub y: Vec<f64>,
    status: Vec<Status>,
    /// Column basic in each row.
    basis: Vec<usize>,
    binv: Vec<f64>,
    /// Scratch: the entering column in basis coordinates, a row, a matrix.
    alpha: Vec<f64>,
    work: Vec<f64>,
    mat: Vec<f64>,
    /// Phase costs, bounds and signs of the artificials.
    cost: Vec<f64>,
    art_sign: Vec<f64>,
    art_hi: Vec<f64>,
    pub iterations: usize,
}

/// Why a solve stopped without an optimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Infeasible,
    IterationLimit,
    Singular,
}

impl Failure {
    pub fn into_error(self, what: &'static str) -> MarketError {
        MarketError::Solver {
            what,
            reason: match self {
                Failure::Infeasible => "the LP is infeasible",
                Failure::IterationLimit => "the simplex reached its iteration limit",
                Failure::Singular => "the basis became numerically singular",
            },
        }
    }
}

/// The magnitude of the LP's values, for tolerances.
fn scale_x(lp: &Lp) -> f64 {
    let scale_b = lp.b.iter().fold(1.0f64, |s, v| s.max(v.abs()));
    (0..lp.n).fold(scale_b, |s, j| {
        s.max(lp.lo[j].abs()).max(if lp.hi[j].is_finite() {
            lp.hi[j].abs()
        } else {
            0.0
        })
    })
}

/// Iteration limit of one phase.
fn limit(lp: &Lp) -> usize {
    100 * (lp.m + lp.n) + 1000
}

impl Simplex {
    /// Reserve, fallibly, room for an LP of `m` rows and `n` columns
    /// (`mm` = m x m).
    pub fn try_reserve(&mut self, m: usize, n: usize, mm: usize) -> crate::error::Result<()> {
        reserve(&mut self.x, n + m)?;
        reserve(&mut self.y, m)?;
        reserve(&mut self.status, n + m)?;
        reserve(&mut self.basis, m)?;
        reserve(&mut self.binv, mm)?;
        reserve(&mut self.alpha, m)?;
        reserve(&mut self.work, m)?;
        reserve(&mut self.mat, mm.saturating_mul(2))?;
        reserve(&mut self.cost, n + m)?;
        reserve(&mut self.art_sign, m)?;
        reserve(&mut self.art_hi, m)
    }

    /// True when column `j` is basic in the final basis.
    pub fn is_basic(&self, j: usize) -> bool {
        self.status.get(j) == Some(&Status::Basic)
    }

    /// Solve `lp`. With `phase_two` false only a feasible point is sought.
    /// `crash` names a basic column for each row: when that basis, with the
    /// other columns at `lp.init`, is feasible, phase 1 is skipped.
    pub fn solve(
        &mut self,
        lp: &Lp,
        phase_two: bool,
        crash: Option<&[usize]>,
    ) -> std::result::Result<(), Failure> {
        let (m, n) = (lp.m, lp.n);
        let total = n + m;
        self.iterations = 0;
        if let Some(basis) = crash {
            if self.start_from(lp, basis)? {
                return self.finish(lp, phase_two);
            }
        }
        self.start_point(lp);
        // Residual of the rows with every structural column at its start.
        self.work.clear();
        self.work.extend_from_slice(&lp.b);
        for j in 0..n {
            let v = self.x[j];
            if v != 0.0 {
                for (r, a) in lp.col(j) {
                    self.work[r] -= a * v;
                }
            }
        }
        self.art_sign.clear();
        self.art_hi.clear();
        self.basis.clear();
        self.binv.clear();
        self.binv.resize(m * m, 0.0);
        for i in 0..m {
            let s = if self.work[i] < 0.0 { -1.0 } else { 1.0 };
            self.art_sign.push(s);
            self.art_hi.push(f64::INFINITY);
            self.x[n + i] = self.work[i].abs();
            self.status[n + i] = Status::Basic;
            self.basis.push(n + i);
            self.binv[i * m + i] = s;
        }
        let primal_tol = 1e-9 * scale_x(lp);
        // Phase 1: minimise the artificials.
        self.cost.clear();
        self.cost.resize(total, 0.0);
        for i in 0..m {
            self.cost[n + i] = 1.0;
        }
        self.run(lp, primal_tol, 1e-11, limit(lp))?;
        let infeasibility: f64 = (0..m).map(|i| self.x[n + i]).sum();
        if infeasibility > 1e-7 * scale_x(lp) {
            return Err(Failure::Infeasible);
        }
        // Artificials stay at zero from now on.
        for i in 0..m {
            self.art_hi[i] = 0.0;
            if self.status[n + i] != Status::Basic {
                self.x[n + i] = 0.0;
            }
        }
        self.finish(lp, phase_two)
    }

    /// Every structural column at its start value `lp.init`, clipped into
    /// its bounds (and its status from where that lies), the artificials
    /// at 0.
    fn start_point(&mut self, lp: &Lp) {
        let total = lp.n + lp.m;
        self.x.clear();
        self.x.resize(total, 0.0);
        self.status.clear();
        self.status.resize(total, Status::Lower);
        for j in 0..lp.n {
            let v = lp.init[j].max(lp.lo[j]).min(lp.hi[j]);
            self.x[j] = v;
            self.status[j] = if v == lp.lo[j] {
                Status::Lower
            } else if v == lp.hi[j] {
                Status::Upper
            } else {
                Status::Free
            };
        }
    }

    /// Start from the basis `basis` with the other columns at `lp.init`;
    /// false (and no harm done) when that point is infeasible or singular.
    fn start_from(&mut self, lp: &Lp, basis: &[usize]) -> std::result::Result<bool, Failure> {
        let (m, n) = (lp.m, lp.n);
        if basis.len() != m || basis.iter().any(|&j| j >= n) {
            return Ok(false);
        }
        self.start_point(lp);
        self.art_sign.clear();
        self.art_sign.resize(m, 1.0);
        self.art_hi.clear();
        self.art_hi.resize(m, 0.0);
        self.basis.clear();
        self.basis.extend_from_slice(basis);
        for &j in basis {
            if self.status[j] == Status::Basic {
                return Ok(false);
            }
            self.status[j] = Status::Basic;
        }
        self.binv.clear();
        self.binv.resize(m * m, 0.0);
        if self.refactor(lp).is_err() {
            return Ok(false);
        }
        let tol = 1e-9 * scale_x(lp);
        let feasible = basis
            .iter()
            .all(|&j| self.x[j] >= lp.lo[j] - tol && self.x[j] <= lp.hi[j] + tol);
        Ok(feasible)
    }

    /// Phase 2 (when asked), a fresh factorisation, and the duals.
    fn finish(&mut self, lp: &Lp, phase_two: bool) -> std::result::Result<(), Failure> {
        let (m, n) = (lp.m, lp.n);
        let total = n + m;
        if phase_two {
            self.cost.clear();
            self.cost.extend_from_slice(&lp.c);
            self.cost.resize(total, 0.0);
            let scale_c = lp.c.iter().fold(1.0f64, |s, v| s.max(v.abs()));
            self.run(lp, 1e-9 * scale_x(lp), 1e-11 * scale_c, limit(lp))?;
        }
        self.refactor(lp)?;
        // Duals of the final basis: y = c_B B^-1.
        self.y.clear();
        self.y.resize(m, 0.0);
        if phase_two {
            for (r, &j) in self.basis.iter().enumerate() {
                let cj = self.cost[j];
                if cj != 0.0 {
                    for (yi, &v) in self.y.iter_mut().zip(&self.binv[r * m..(r + 1) * m]) {
                        *yi += cj * v;
                    }
                }
            }
        }
        Ok(())
    }

    fn bounds(&self, lp: &Lp, j: usize) -> (f64, f64) {
        if j < lp.n {
            (lp.lo[j], lp.hi[j])
        } else {
            (0.0, self.art_hi[j - lp.n])
        }
    }

    /// Column `j` into `out` (artificials: a signed unit column).
    fn column_into(&self, lp: &Lp, j: usize, out: &mut [f64]) {
        if j < lp.n {
            out.fill(0.0);
            for (r, v) in lp.col(j) {
                out[r] = v;
            }
        } else {
            out.fill(0.0);
            out[j - lp.n] = self.art_sign[j - lp.n];
        }
    }

    /// `sum_i y_i A_ij` for column `j`.
    fn dot_col(&self, lp: &Lp, y: &[f64], j: usize) -> f64 {
        if j < lp.n {
            lp.col(j).map(|(r, a)| a * y[r]).sum()
        } else {
            self.art_sign[j - lp.n] * y[j - lp.n]
        }
    }

    /// Simplex iterations on the current phase costs until optimal.
    fn run(
        &mut self,
        lp: &Lp,
        primal_tol: f64,
        dual_tol: f64,
        limit: usize,
    ) -> std::result::Result<(), Failure> {
        let (m, n) = (lp.m, lp.n);
        let total = n + m;
        let mut y = std::mem::take(&mut self.y);
        let mut alpha = std::mem::take(&mut self.alpha);
        alpha.resize(m, 0.0);
        let mut degenerate = 0usize;
        let mut since_refactor = 0usize;
        let result = loop {
            if self.iterations >= limit {
                break Err(Failure::IterationLimit);
            }
            if since_refactor >= REFACTOR {
                if let Err(e) = self.refactor(lp) {
                    break Err(e);
                }
                since_refactor = 0;
            }
            // Duals of the phase costs.
            y.clear();
            y.resize(m, 0.0);
            for (r, &j) in self.basis.iter().enumerate() {
                let cj = self.cost[j];
                if cj != 0.0 {
                    for (yi, &v) in y.iter_mut().zip(&self.binv[r * m..(r + 1) * m]) {
                        *yi += cj * v;
                    }
                }
            }
            // Pricing. Artificials fixed at zero (phase 2) are skipped.
            let bland = degenerate >= DEGENERATE_RUN;
            let mut entering = None;
            let mut best = 0.0;
            let priced = if self.art_hi.iter().all(|&h| h == 0.0) {
                n
            } else {
                total
            };
            let (starts, rows, vals) = (&lp.start, &lp.rows, &lp.vals);
            for j in 0..priced {
                let st = self.status[j];
                if st == Status::Basic {
                    continue;
                }
                let d = if j < n {
                    if lp.hi[j] <= lp.lo[j] {
                        continue;
                    }
                    let mut dot = 0.0;
                    for k in starts[j]..starts[j + 1] {
                        dot += vals[k] * y[rows[k] as usize];
                    }
                    self.cost[j] - dot
                } else {
                    if self.art_hi[j - n] <= 0.0 {
                        continue;
                    }
                    self.cost[j] - self.art_sign[j - n] * y[j - n]
                };
                let gain = match st {
                    Status::Lower if d < -dual_tol => -d,
                    Status::Upper if d > dual_tol => d,
                    Status::Free if d.abs() > dual_tol => d.abs(),
                    _ => continue,
                };
                if bland {
                    entering = Some(j);
                    break;
                }
                if gain > best {
                    best = gain;
                    entering = Some(j);
                }
            }
            let Some(q) = entering else {
                break Ok(());
            };
            // alpha = B^-1 A_q.
            alpha.fill(0.0);
            if q < n {
                for (k, v) in lp.col(q) {
                    for (r, a) in alpha.iter_mut().enumerate() {
                        *a += self.binv[r * m + k] * v;
                    }
                }
            } else {
                let (k, v) = (q - n, self.art_sign[q - n]);
                for (r, a) in alpha.iter_mut().enumerate() {
                    *a = self.binv[r * m + k] * v;
                }
            }
            // Increasing (from its lower bound, or free with d < 0) or
            // decreasing.
            let dir = match self.status[q] {
                Status::Lower => 1.0,
                Status::Free if self.cost[q] - self.dot_col(lp, &y, q) < 0.0 => 1.0,
                _ => -1.0,
            };
            let (qlo, qhi) = self.bounds(lp, q);
            let mut step = if dir > 0.0 {
                qhi - self.x[q]
            } else {
                self.x[q] - qlo
            };
            let mut leave: Option<(usize, bool)> = None;
            let mut leave_pivot = 0.0f64;
            for r in 0..m {
                // x_B[r] changes by -dir * alpha[r] per unit step.
                let delta = -dir * alpha[r];
                if delta.abs() <= 1e-9 {
                    continue;
                }
                let j = self.basis[r];
                let (lo, hi) = self.bounds(lp, j);
                let xj = self.x[j];
                let (limit_r, to_upper) = if delta < 0.0 {
                    (((xj - lo).max(0.0)) / -delta, false)
                } else if hi.is_finite() {
                    (((hi - xj).max(0.0)) / delta, true)
                } else {
                    continue;
                };
                // Ties within the tolerance go to the larger pivot (then
                // the lower row): a stabler basis.
                let better = match leave {
                    None => limit_r < step,
                    Some((lr, _)) => {
                        limit_r < step - primal_tol
                            || (limit_r <= step + primal_tol
                                && (if bland {
                                    j < self.basis[lr]
                                } else {
                                    alpha[r].abs() > leave_pivot
                                }))
                    }
                };
                if better {
                    step = limit_r;
                    leave = Some((r, to_upper));
                    leave_pivot = alpha[r].abs();
                }
            }
            if !step.is_finite() {
                break Err(Failure::Singular);
            }
            self.iterations += 1;
            since_refactor += 1;
            if step <= primal_tol {
                degenerate += 1;
            } else {
                degenerate = 0;
            }
            // Move.
            self.x[q] += dir * step;
            for r in 0..m {
                let j = self.basis[r];
                self.x[j] -= dir * step * alpha[r];
            }
            match leave {
                None => {
                    // The entering column reaches its other bound.
                    self.status[q] = if dir > 0.0 {
                        self.x[q] = qhi;
                        Status::Upper
                    } else {
                        self.x[q] = qlo;
                        Status::Lower
                    };
                }
                Some((r, to_upper)) => {
                    let out = self.basis[r];
                    let (lo, hi) = self.bounds(lp, out);
                    self.x[out] = if to_upper { hi } else { lo };
                    self.status[out] = if to_upper {
                        Status::Upper
                    } else {
                        Status::Lower
                    };
                    self.status[q] = Status::Basic;
                    self.basis[r] = q;
                    // Gauss-Jordan pivot of B^-1 on row r.
                    let p = alpha[r];
                    let (head, rest) = self.binv.split_at_mut(r * m);
                    let (pivot, tail) = rest.split_at_mut(m);
                    for v in pivot.iter_mut() {
                        *v /= p;
                    }
                    let pivot = &*pivot;
                    let rows = head.chunks_exact_mut(m).chain(tail.chunks_exact_mut(m));
                    for (row, &f) in rows.zip(
                        alpha
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| *i != r)
                            .map(|(_, f)| f),
                    ) {
                        if f != 0.0 {
                            for (a, &v) in row.iter_mut().zip(pivot) {
                                *a -= f * v;
                            }
                        }
                    }
                }
            }
        };
        self.y = y;
        self.alpha = alpha;
        result
    }

    /// Recompute B^-1 from the basis columns (Gauss-Jordan with partial
    /// pivoting) and the basic values from the nonbasic ones.
    fn refactor(&mut self, lp: &Lp) -> std::result::Result<(), Failure> {
        let (m, n) = (lp.m, lp.n);
        if m == 0 {
            return Ok(());
        }
        // mat = [B | I], row-major, m x 2m.
        let w = 2 * m;
        self.mat.clear();
        self.mat.resize(m * w, 0.0);
        let mut col = std::mem::take(&mut self.alpha);
        col.resize(m, 0.0);
        for (r, &j) in self.basis.iter().enumerate() {
            self.column_into(lp, j, &mut col);
            for i in 0..m {
                self.mat[i * w + r] = col[i];
            }
        }
        self.alpha = col;
        for i in 0..m {
            self.mat[i * w + m + i] = 1.0;
        }
        for k in 0..m {
            let mut piv = k;
            for i in k + 1..m {
                if self.mat[i * w + k].abs() > self.mat[piv * w + k].abs() {
                    piv = i;
                }
            }
            if self.mat[piv * w + k].abs() < 1e-13 {
                return Err(Failure::Singular);
            }
            if piv != k {
                for c in 0..w {
                    self.mat.swap(k * w + c, piv * w + c);
                }
            }
            let p = self.mat[k * w + k];
            for c in 0..w {
                self.mat[k * w + c] /= p;
            }
            for i in 0..m {
                let f = self.mat[i * w + k];
                if i != k && f != 0.0 {
                    for c in 0..w {
                        let v = self.mat[k * w + c];
                        self.mat[i * w + c] -= f * v;
                    }
                }
            }
        }
        // Row r of B^-1 belongs to the basic column of position r.
        for r in 0..m {
            for c in 0..m {
                self.binv[r * m + c] = self.mat[r * w + m + c];
            }
        }
        // x_B = B^-1 (b - A_N x_N).
        let mut rhs = std::mem::take(&mut self.work);
        rhs.clear();
        rhs.extend_from_slice(&lp.b);
        for j in 0..n + m {
            if self.status[j] != Status::Basic {
                let v = self.x[j];
                if v != 0.0 {
                    if j < n {
                        for (r, a) in lp.col(j) {
                            rhs[r] -= a * v;
                        }
                    } else {
                        rhs[j - n] -= self.art_sign[j - n] * v;
                    }
                }
            }
        }
        for r in 0..m {
            let v: f64 = self.binv[r * m..(r + 1) * m]
                .iter()
                .zip(&rhs)
                .map(|(a, b)| a * b)
                .sum();
            let j = self.basis[r];
            self.x[j] = v;
        }
        self.work = rhs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_lp_primal_and_duals() {
        // min x0 + 2 x1  s.t. x0 + x1 = 3, 0 <= x0 <= 2, 0 <= x1 <= 5.
        let mut lp = Lp::default();
        lp.reset(1);
        lp.b[0] = 3.0;
        lp.push(1.0, 0.0, 2.0, [1.0]);
        lp.push(2.0, 0.0, 5.0, [1.0]);
        let mut s = Simplex::default();
        s.solve(&lp, true, None).unwrap();
        assert_eq!(&s.x[..2], &[2.0, 1.0]);
        assert_eq!(s.y[0], 2.0);
    }

    #[test]
    fn infeasible_is_reported() {
        let mut lp = Lp::default();
        lp.reset(1);
        lp.b[0] = 10.0;
        lp.push(1.0, 0.0, 2.0, [1.0]);
        let mut s = Simplex::default();
        assert_eq!(s.solve(&lp, true, None), Err(Failure::Infeasible));
    }

    #[test]
    fn negative_lower_bounds_and_two_rows() {
        // A flow f in [-1, 1] from row 0 to row 1; x0 (cost 1) at row 0,
        // x1 (cost 5) at row 1; demands 0 and 3.
        let mut lp = Lp::default();
        lp.reset(2);
        lp.b[1] = 3.0;
        lp.push(1.0, 0.0, 10.0, [1.0, 0.0]);
        lp.push(5.0, 0.0, 10.0, [0.0, 1.0]);
        lp.push(0.0, -1.0, 1.0, [-1.0, 1.0]);
        let mut s = Simplex::default();
        s.solve(&lp, true, None).unwrap();
        assert!((s.x[0] - 1.0).abs() < 1e-12 && (s.x[1] - 2.0).abs() < 1e-12);
        assert!((s.x[2] - 1.0).abs() < 1e-12);
        assert!((s.y[0] - 1.0).abs() < 1e-12 && (s.y[1] - 5.0).abs() < 1e-12);
    }
}
