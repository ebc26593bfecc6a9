// Branch-free exp and cosine-cutoff kernels that compilers auto-vectorise (libm calls would
// not be). Accurate to a few ulp over the ranges used by wACSF.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__GNUC__)
#define XANESNET_INLINE inline __attribute__((always_inline))
#else
#define XANESNET_INLINE inline
#endif

namespace xanesnet {
namespace fastmath {

/// exp(x) for x <= 0; returns 0 below -708 (where exp underflows to subnormals).
XANESNET_INLINE double exp_neg(double x) {
    const double shifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to integer in low bits
    const double log2e = 1.4426950408889634;
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    const bool underflow = x < -708.0;
    x = underflow ? -708.0 : x;
    double t = x * log2e + shifter;
    double n = t - shifter;
    double r = (x - n * ln2_hi) - n * ln2_lo;  // |r| <= ln2 / 2
    // Degree-11 polynomial interpolating exp at Chebyshev nodes of [-ln2/2, ln2/2]
    // (max relative error 2.2e-16, i.e. rounding level; two terms fewer than Taylor).
    double p = 2.5110037605963777e-08;
    p = p * r + 2.763263963904103e-07;
    p = p * r + 2.755724091857897e-06;
    p = p * r + 2.4801485482328494e-05;
    p = p * r + 0.00019841269890047113;
    p = p * r + 0.0013888888952314775;
    p = p * r + 0.008333333333319601;
    p = p * r + 0.0416666666664881;
    p = p * r + 0.1666666666666668;
    p = p * r + 0.5000000000000019;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // 2^n as a double: n sits in the low mantissa bits of t. Unsigned arithmetic (modulo 2^64)
    // gives the same bits as the signed shift would, without its undefined behaviour.
    uint64_t bits;
    std::memcpy(&bits, &t, sizeof bits);
    bits = (bits << 52) + (uint64_t(1023) << 52);
    double scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return underflow ? 0.0 : p * scale;
}

/// cos(u) for u in [0, pi/2], Taylor series to u^20 (error < 2e-17).
XANESNET_INLINE double cos_quarter(double u) {
    double u2 = u * u;
    double p = 1.0 / 2432902008176640000.0;
    p = p * u2 - 1.0 / 6402373705728000.0;
    p = p * u2 + 1.0 / 20922789888000.0;
    p = p * u2 - 1.0 / 87178291200.0;
    p = p * u2 + 1.0 / 479001600.0;
    p = p * u2 - 1.0 / 3628800.0;
    p = p * u2 + 1.0 / 40320.0;
    p = p * u2 - 1.0 / 720.0;
    p = p * u2 + 1.0 / 24.0;
    p = p * u2 - 0.5;
    p = p * u2 + 1.0;
    return p;
}

/// ½(cos(π r / r_max) + 1) for 0 <= r <= 2 r_max, written as cos²(π r / (2 r_max)).
/// `zero_beyond`: return 0 for r >= r_max (the cutoff function proper).
XANESNET_INLINE double cosine_cutoff(double r, double half_pi_over_rmax, bool zero_beyond,
                                     double r_max) {
    const double half_pi = 1.5707963267948966;
    const double pi = 3.141592653589793;
    double phi = r * half_pi_over_rmax;
    double u = phi <= half_pi ? phi : pi - phi;
    u = u < 0.0 ? 0.0 : u;
    double c = cos_quarter(u);
    double fc = c * c;
    return (zero_beyond && r >= r_max) ? 0.0 : fc;
}

}  // namespace fastmath
}  // namespace xanesnet
