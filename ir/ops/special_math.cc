#include "ir/ops/special_math.h"

#include <array>
#include <cmath>
#include <limits>

namespace kiln::ir::special {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPi = 3.14159265358979323846;
constexpr double kSqrt2 = 1.41421356237309504880;
constexpr double kTwoOverSqrtPi = 1.12837916709551257390;
// The convergence test of the series and continued fractions (Cephes' MACHEP, 2^-53).
constexpr double kMachEp = 1.11022302462515654042e-16;
// Zeta sums a negative q's terms one by one up to this magnitude, in closed form beyond.
constexpr double kZetaDirectLimit = 1e6;
// log(DBL_MAX): below -kMaxLog a prefactor exp(.) underflows.
constexpr double kMaxLog = 7.09782712893383996843e2;

// Bernoulli numbers B_2 .. B_24, the coefficients of the Euler-Maclaurin tails below.
constexpr std::array<double, 12> kBernoulli = {1.0 / 6,       -1.0 / 30,       1.0 / 42,       -1.0 / 30,
                                               5.0 / 66,      -691.0 / 2730,   7.0 / 6,        -3617.0 / 510,
                                               43867.0 / 798, -174611.0 / 330, 854513.0 / 138, -236364091.0 / 2730};

// ---- inverse error function ----

// erfinv for |x| <= 0.5: Halley's iteration on erf(y) = x from the series' first terms. erf is
// accurate to an ulp here, so three steps (cubic convergence) reach double precision.
double ErfinvCentral(double x) {
  const double x2 = x * x;
  double y = 0.88622692545275801365 * x * (1 + x2 * (kPi / 12 + x2 * (7 * kPi * kPi / 480)));
  for (int i = 0; i < 4; ++i) {
    const double u = (std::erf(y) - x) / (kTwoOverSqrtPi * std::exp(-y * y));
    y -= u / (1 + u * y);
  }
  return y;
}

// The y with erfc(y) = q for 0 < q <= 0.5 (y >= 0.47). Newton's iteration on log erfc(y) = log q,
// which is nearly linear in y^2, so it converges from the Abramowitz-Stegun 26.2.23 estimate
// (error < 5e-4) without the underflow of erfc itself far in the tail.
double InverseErfcTail(double q) {
  const double t = std::sqrt(-2 * std::log(q / 2));
  double y =
      (t - (2.515517 + t * (0.802853 + t * 0.010328)) / (1 + t * (1.432788 + t * (0.189269 + t * 0.001308)))) / kSqrt2;
  for (int i = 0; i < 8; ++i) {
    const double log_erfc = std::log(std::erfc(y));
    if (!std::isfinite(log_erfc)) break;
    // d/dy log erfc(y) = -(2/sqrt(pi)) exp(-y^2) / erfc(y), formed in logs so it never underflows.
    const double slope = -kTwoOverSqrtPi * std::exp(-y * y - log_erfc);
    const double step = (log_erfc - std::log(q)) / slope;
    y -= step;
    if (std::abs(step) <= 1e-17 * y) break;
  }
  return y;
}

// ---- incomplete gamma ----

// x^a e^-x / Gamma(a), or 0 when it underflows (or is NaN, e.g. a = x = inf).
double IgammaPrefactor(double a, double x) {
  const double log_ax = a * std::log(x) - x - std::lgamma(a);
  if (log_ax < -kMaxLog || std::isnan(log_ax)) return 0;
  return std::exp(log_ax);
}

// P(a, x) by its power series, for x <= max(1, a).
double IgammaSeries(double a, double x) {
  double ax = IgammaPrefactor(a, x);
  if (ax == 0) return 0;
  ax /= a;
  double r = a, c = 1, sum = 1;
  for (int i = 0; i < 2000; ++i) {
    r += 1;
    c *= x / r;
    sum += c;
    if (c <= kMachEp * sum) break;
  }
  return sum * ax;
}

// Q(a, x) by its continued fraction, for x > 1 and x > a.
double IgammacContinuedFraction(double a, double x) {
  constexpr double kBig = 4.503599627370496e15;  // 2^52: rescale the recurrences above this
  constexpr double kBigInv = 2.22044604925031308085e-16;
  if (std::isinf(x)) return 0;
  const double ax = IgammaPrefactor(a, x);
  if (ax == 0) return 0;
  double y = 1 - a, z = x + y + 1, c = 0;
  double pkm2 = 1, qkm2 = x, pkm1 = x + 1, qkm1 = z * x;
  double ans = pkm1 / qkm1;
  for (int i = 0; i < 2000; ++i) {
    c += 1;
    y += 1;
    z += 2;
    const double yc = y * c;
    const double pk = pkm1 * z - pkm2 * yc;
    const double qk = qkm1 * z - qkm2 * yc;
    if (qk != 0) {
      const double r = pk / qk;
      const double change = std::abs((ans - r) / r);
      ans = r;
      if (change <= kMachEp) break;
    }
    pkm2 = pkm1;
    pkm1 = pk;
    qkm2 = qkm1;
    qkm1 = qk;
    if (std::abs(pk) > kBig) {
      pkm2 *= kBigInv;
      pkm1 *= kBigInv;
      qkm2 *= kBigInv;
      qkm1 *= kBigInv;
    }
  }
  return ans * ax;
}

// ---- Bessel ----

// sum_k (x^2/4)^k / (k! (k + nu)!) * (x/2)^nu for nu = 0 or 1, then scaled by exp(-x); x >= 0.
// Every term is positive, so the sum is accurate to a few ulp.
double BesselIeSeries(int nu, double x) {
  const double q = x * x / 4;
  double term = nu == 0 ? 1.0 : x / 2;
  double sum = term;
  for (int k = 1; k < 500; ++k) {
    term *= q / (static_cast<double>(k) * static_cast<double>(k + nu));
    sum += term;
    if (term <= kMachEp * sum) break;
  }
  return sum * std::exp(-x);
}

// The asymptotic expansion exp(-x) I_nu(x) ~ (2 pi x)^-1/2 sum_k (-1)^k a_k(nu) / x^k for large
// x (x >= 25 here, where the smallest term is below 1e-20 of the sum); stops at the smallest term.
double BesselIeAsymptotic(int nu, double x) {
  const double mu = 4.0 * nu * nu;
  double term = 1, sum = 1;
  for (int k = 1; k < 200; ++k) {
    const double odd = 2.0 * k - 1;
    const double next = -term * (mu - odd * odd) / (8.0 * k * x);
    if (std::abs(next) >= std::abs(term)) break;
    term = next;
    sum += term;
    if (std::abs(term) <= kMachEp * std::abs(sum)) break;
  }
  return sum / std::sqrt(2 * kPi * x);
}

double BesselIe(int nu, double ax) {
  if (std::isnan(ax)) return ax;
  if (std::isinf(ax)) return 0;
  return ax < 25 ? BesselIeSeries(nu, ax) : BesselIeAsymptotic(nu, ax);
}

// The continued fraction of I_x(a, b) (modified Lentz), converging fast for x < (a + 1) / (a + b + 2).
double BetaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::abs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) <= kMachEp) break;
  }
  return h;
}

}  // namespace

double Lgamma(double x) { return std::lgamma(x); }

// Reflection psi(x) = psi(1 - x) - pi / tan(pi x) for x <= 0, the recurrence psi(x) = psi(x + 1) -
// 1/x up to x >= 10, then the asymptotic series log x - 1/(2x) - sum_k B_2k / (2k x^2k).
double Digamma(double x) {
  double reflection = 0;
  bool negative = false;
  if (x <= 0) {
    const double fl = std::floor(x);
    if (fl == x) return kNaN;  // the poles, and -inf
    negative = true;
    // pi / tan(pi x) with x reduced to the nearest integer's neighbourhood, where tan is exact
    // enough; at a half-integer the term is 0.
    double frac = x - fl;
    if (frac != 0.5) {
      if (frac > 0.5) frac = x - (fl + 1);
      reflection = kPi / std::tan(kPi * frac);
    }
    x = 1 - x;
  }
  double shift = 0;
  while (x < 10) {
    shift += 1 / x;
    x += 1;
  }
  double tail = 0;
  if (x < 1e17) {
    const double z = 1 / (x * x);
    double zk = z;
    for (size_t k = 0; k < 7; ++k) {
      tail += kBernoulli[k] / static_cast<double>(2 * (k + 1)) * zk;
      zk *= z;
    }
  }
  const double y = std::log(x) - 0.5 / x - tail - shift;
  return negative ? y - reflection : y;
}

double Erfinv(double x) {
  if (std::isnan(x) || x < -1 || x > 1) return kNaN;
  if (x == 1) return kInf;
  if (x == -1) return -kInf;
  if (std::abs(x) <= 0.5) return ErfinvCentral(x);
  const double y = InverseErfcTail(1 - std::abs(x));  // 1 - |x| is exact for |x| >= 0.5
  return x < 0 ? -y : y;
}

// ndtri(p) = sqrt(2) erfinv(2p - 1) = -sqrt(2) erfcinv(2p): the central form where 2p - 1 is
// exact and small results keep their relative precision, the tail forms elsewhere.
double Ndtri(double p) {
  if (std::isnan(p) || p < 0 || p > 1) return kNaN;
  if (p == 0) return -kInf;
  if (p == 1) return kInf;
  if (p >= 0.25 && p <= 0.75) return kSqrt2 * ErfinvCentral(2 * p - 1);
  if (p < 0.25) return -kSqrt2 * InverseErfcTail(2 * p);
  return kSqrt2 * InverseErfcTail(2 * (1 - p));  // 1 - p is exact for p >= 0.5
}

double BesselI0e(double x) { return BesselIe(0, std::abs(x)); }

double BesselI1e(double x) {
  const double y = BesselIe(1, std::abs(x));
  return x < 0 ? -y : y;
}

double Igamma(double a, double x) {
  if (x == 0) return 0;
  if (x < 0 || a <= 0 || std::isnan(a) || std::isnan(x)) return kNaN;
  if (x > 1 && x > a) return 1 - IgammacContinuedFraction(a, x);
  return IgammaSeries(a, x);
}

double Igammac(double a, double x) {
  if (x < 0 || a <= 0 || std::isnan(a) || std::isnan(x)) return kNaN;
  if (x < 1 || x < a) return 1 - IgammaSeries(a, x);
  return IgammacContinuedFraction(a, x);
}

// Direct summation of the first terms up to k + q > 9 (and at least nine terms), then the
// Euler-Maclaurin tail with B_2 .. B_24. For q <= 0: an integer q is a pole (inf for an even x,
// NaN otherwise); a non-integer q needs an integer x (the summation then passes the negative
// terms), otherwise NaN.
double Zeta(double x, double q) {
  if (x == 1) return kInf;
  if (x < 1) return kNaN;
  if (q <= 0) {
    if (q == std::floor(q)) return (x == std::floor(x) && std::fmod(x, 2.0) == 0) ? kInf : kNaN;
    if (x != std::floor(x)) return kNaN;
    // The direct summation below takes -q steps to pass the negative terms. Far from 0 (where
    // float inputs are integers anyway) the negative terms are summed in closed form instead, so a
    // hostile q cannot stall the kernel: with q = -(m + f), m an integer and 0 < f < 1, the terms
    // (q + k)^-x for k <= m are (-1)^x (j + f)^-x for j = 0 .. m, and the rest start at 1 - f.
    if (q < -kZetaDirectLimit) {
      const double f = -(q - std::ceil(q));  // exact: q and ceil(q) share q's ulp grid
      const double m = -std::ceil(q);
      const double sign = std::fmod(x, 2.0) == 0 ? 1.0 : -1.0;
      return sign * (Zeta(x, f) - Zeta(x, f + m + 1)) + Zeta(x, 1 - f);
    }
  }
  double s = std::pow(q, -x);
  double a = q, b = 0;
  for (int i = 0; i < 9 || a <= 9; ++i) {
    a += 1;
    b = std::pow(a, -x);
    s += b;
    if (std::abs(b / s) < kMachEp) return s;
  }
  const double w = a;
  s += b * w / (x - 1);
  s -= 0.5 * b;
  double rising = 1;  // x (x+1) ... (x+2k-2), the derivatives' coefficients
  double k = 0;
  for (size_t i = 0; i < kBernoulli.size(); ++i) {
    rising *= x + k;
    b /= w;
    // (2k)! / B_2k is how Cephes tabulates the coefficients; the factorial is formed here.
    double factorial = 1;
    for (size_t f = 2; f <= 2 * (i + 1); ++f) factorial *= static_cast<double>(f);
    const double t = rising * b * kBernoulli[i] / factorial;
    s += t;
    if (std::abs(t / s) < kMachEp) return s;
    k += 1;
    rising *= x + k;
    b /= w;
    k += 1;
  }
  return s;
}

double Polygamma(double n, double x) {
  if (std::floor(n) != n || n < 0) return kNaN;  // NaN fails the first test
  if (n == 0) return Digamma(x);
  const double factorial = std::exp(std::lgamma(n + 1));
  return std::pow(-1.0, n + 1) * factorial * Zeta(n + 1, x);
}

// x^a (1-x)^b / (a B(a, b)) times the continued fraction, on the side of the mean where it
// converges (I_x(a, b) = 1 - I_(1-x)(b, a) on the other); the prefactor is formed in logs.
double Betainc(double a, double b, double x) {
  // Eigen's order of checks: a NaN a or b passes the first, so x = 0 and x = 1 still give 0 and 1.
  if (a <= 0 || b <= 0) return kNaN;
  if (x == 0) return 0;
  if (x == 1) return 1;
  if (!(x > 0 && x < 1)) return kNaN;
  if (std::isnan(a) || std::isnan(b)) return kNaN;
  const double log_prefactor =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double prefactor = std::exp(log_prefactor);
  if (x < (a + 1) / (a + b + 2)) return prefactor * BetaContinuedFraction(a, b, x) / a;
  return 1 - prefactor * BetaContinuedFraction(b, a, 1 - x) / b;
}

}  // namespace kiln::ir::special
