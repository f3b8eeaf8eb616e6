// Special functions in double precision with the semantics TensorFlow gives its ops of the same
// names (Eigen's definitions, including their values at poles and outside the domain). The
// elementwise ops of ir/ops/elementwise_special_ops.h evaluate these for every float dtype, so
// float32, float16 and bfloat16 results are rounded once from a double result.
#pragma once

namespace kiln::ir::special {

// log|Gamma(x)|: +inf at the poles (0, -1, -2, ...) and at +-inf.
double Lgamma(double x);
// psi(x) = d/dx log Gamma(x): NaN at 0, -1, -2, ... and at -inf.
double Digamma(double x);
// The inverse of erf on [-1, 1]: +-inf at +-1, NaN outside.
double Erfinv(double x);
// The inverse of the standard normal CDF on [0, 1]: -inf at 0, +inf at 1, NaN outside.
double Ndtri(double p);
// exp(-|x|) I0(x) and exp(-|x|) I1(x), the exponentially scaled modified Bessel functions.
double BesselI0e(double x);
double BesselI1e(double x);
// The regularized lower (P) and upper (Q = 1 - P) incomplete gamma functions. P(a, 0) = 0;
// otherwise x < 0 or a <= 0 is NaN (Q as well).
double Igamma(double a, double x);
double Igammac(double a, double x);
// The Hurwitz zeta function sum_k (k + q)^-x: inf at x = 1, NaN for x < 1; for q <= 0 see Zeta's
// definition in the .cc (Cephes' conventions, which Eigen follows).
double Zeta(double x, double q);
// The n-th derivative of digamma: NaN unless n is a non-negative integer.
double Polygamma(double n, double x);
// The regularized incomplete beta function I_x(a, b): NaN for a <= 0, b <= 0 or x outside
// [0, 1]; otherwise 0 at x = 0 and 1 at x = 1 (even for a NaN a or b).
double Betainc(double a, double b, double x);

}  // namespace kiln::ir::special
