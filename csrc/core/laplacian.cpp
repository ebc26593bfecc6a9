// Laplacian kernel ridge prediction: out = exp(−γ · L1(z, centres)) @ coefficients + y_mean.
//
// The work is n_sites × n_centres × n_features absolute differences (7·10⁹ for 4096 sites against
// a 3264 × 513 model) plus a (n_sites × n_centres) @ (n_centres × n_energies) product. Layout:
//
// * sites are processed in tasks of kTaskSites rows (one OpenMP work item each), centres in
//   chunks of kChunk, so that a chunk of centres (kChunk × n_features floats, ~130 kB) stays in
//   L2 while every site of the task passes over it;
// * the centres are stored transposed in groups of kLanes ([group][feature][lane]), so that the
//   SIMD lanes run over centres: the distance micro-kernel takes kGroup sites × kLanes centres,
//   loads each centre element once per kGroup sites, broadcasts the site's feature, and needs
//   no horizontal sums. It uses |a − b| = 2·max(a, b) − a − b: the loop accumulates
//   Σ_f max(z_f, c_f) (two instructions per element instead of three for sub/abs/add), and
//   Σz + Σc (row sums computed once in float64, rounded once) is subtracted. Each lane's
//   float32 sum restarts every kBlockF features and is added into a second float32 sum, so
//   the rounding error is that of ~kBlockF + n_features / kBlockF additions of terms bounded
//   by ‖z‖₁ + ‖c‖₁, of the order of the distance itself for standardised descriptors;
// * weights exp(−γ d) are computed in float32 with a branch-free exp (vectorised, ~2 ulp);
// * the weights → spectrum product is a register-blocked float32 accumulation (kRows sites ×
//   kLanes energies of accumulators while the centres of a chunk run), summed per chunk of
//   centres and then across chunks (two-level, like a blocked sgemm).
//
// Centres are zero-padded to a multiple of kLanes (with zero coefficients), energies to a
// multiple of kLanes. A site's arithmetic does not depend on which task it falls in, so
// results are bitwise independent of the number of sites and threads (not of the CPU: the
// AVX-512, AVX2 and SSE2 clones round differently).
#include "xanesnet/laplacian.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "fastmath.hpp"  // XANESNET_INLINE
#include "threading.hpp"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(XANESNET_NO_CLONES) && defined(__linux__)
// One binary for any x86-64, with AVX2/AVX-512 code paths picked at load time.
#define XANESNET_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define XANESNET_CLONES
#endif

#if defined(__GNUC__) || defined(__clang__)
#define XANESNET_RESTRICT __restrict__
#else
#define XANESNET_RESTRICT
#endif

namespace xanesnet {

namespace {

constexpr size_t kLanes = 16;      // float32 SIMD lanes (one AVX-512 or two AVX2 registers)
constexpr size_t kGroup = 4;       // sites per pass over a group of kLanes centres
constexpr size_t kRows = 8;        // sites per block of product accumulators
constexpr size_t kTaskSites = 32;  // sites per parallel work item (multiple of kRows)
constexpr size_t kChunk = 64;      // centres per cache tile (multiple of kLanes)
constexpr size_t kBlockF = 32;     // features per inner float32 partial sum
constexpr size_t kAlign = 64;      // bytes (one cache line, one AVX-512 register)
static_assert(kTaskSites % kRows == 0 && kRows % kGroup == 0 && kChunk % kLanes == 0, "tiles");

inline size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/// Zero-initialised, cache-line aligned array.
template <typename T>
class Aligned {
public:
    explicit Aligned(size_t n) {
        const size_t bytes = round_up(std::max<size_t>(n, 1) * sizeof(T), kAlign);
        ptr_ = static_cast<T*>(std::aligned_alloc(kAlign, bytes));
        if (!ptr_) throw std::bad_alloc();
        std::memset(static_cast<void*>(ptr_), 0, bytes);
    }
    ~Aligned() { std::free(ptr_); }
    Aligned(const Aligned&) = delete;
    Aligned& operator=(const Aligned&) = delete;
    T* data() { return ptr_; }
    const T* data() const { return ptr_; }

private:
    T* ptr_ = nullptr;
};

/// Per-task arrays indexed by (site, centre of the chunk) are stored as
/// [site / kRows][centre][site % kRows]: the kRows weights of one centre are contiguous.
inline size_t tile_index(size_t s, size_t j) {
    return ((s / kRows) * kChunk + j) * kRows + s % kRows;
}

/// Scratch space of one thread.
struct Workspace {
    Aligned<double> z_sum;  // (kTaskSites,) Σ_f z
    Aligned<float> smax;    // (kTaskSites × kChunk) Σ_f max(z, c), tile_index layout
    Aligned<float> w;       // (kTaskSites × kChunk) kernel weights, tile_index layout
    Aligned<float> acc;     // (kTaskSites, ep) Σ_j w · coefficients
    Aligned<float> tot;     // (kGroup × kLanes) running sums of the distance micro-kernel

    explicit Workspace(size_t ep)
        : z_sum(kTaskSites), smax(kTaskSites * kChunk), w(kTaskSites * kChunk),
          acc(kTaskSites * ep), tot(kGroup * kLanes) {}
};

/// smax[s, j] = Σ_f max(z_s[f], c[j, f]) for n_rows sites (a multiple of kGroup; rows[s] points
/// at site s's features) and n_groups × kLanes centres stored as [group][feature][lane].
XANESNET_CLONES
void max_sums(const float* const* rows, size_t n_rows, size_t n_features,
              const float* XANESNET_RESTRICT ct, size_t n_groups, float* XANESNET_RESTRICT tot,
              float* XANESNET_RESTRICT smax) {
    for (size_t g = 0; g < n_groups; ++g) {
        const float* XANESNET_RESTRICT cg = ct + g * n_features * kLanes;
        for (size_t s0 = 0; s0 < n_rows; s0 += kGroup) {
            const float* XANESNET_RESTRICT z0 = rows[s0];
            const float* XANESNET_RESTRICT z1 = rows[s0 + 1];
            const float* XANESNET_RESTRICT z2 = rows[s0 + 2];
            const float* XANESNET_RESTRICT z3 = rows[s0 + 3];
            for (size_t l = 0; l < kGroup * kLanes; ++l) tot[l] = 0.0f;
            for (size_t f0 = 0; f0 < n_features; f0 += kBlockF) {
                const size_t f1 = std::min(f0 + kBlockF, n_features);
                float a0[kLanes] = {}, a1[kLanes] = {}, a2[kLanes] = {}, a3[kLanes] = {};
                for (size_t f = f0; f < f1; ++f) {
                    const float* XANESNET_RESTRICT cf = cg + f * kLanes;
                    const float v0 = z0[f], v1 = z1[f], v2 = z2[f], v3 = z3[f];
                    for (size_t l = 0; l < kLanes; ++l) {
                        const float c = cf[l];
                        a0[l] += std::max(v0, c);
                        a1[l] += std::max(v1, c);
                        a2[l] += std::max(v2, c);
                        a3[l] += std::max(v3, c);
                    }
                }
                for (size_t l = 0; l < kLanes; ++l) {
                    tot[0 * kLanes + l] += a0[l];
                    tot[1 * kLanes + l] += a1[l];
                    tot[2 * kLanes + l] += a2[l];
                    tot[3 * kLanes + l] += a3[l];
                }
            }
            for (size_t l = 0; l < kLanes; ++l) {
                const size_t j = g * kLanes + l;
                smax[tile_index(s0, j)] = tot[0 * kLanes + l];
                smax[tile_index(s0 + 1, j)] = tot[1 * kLanes + l];
                smax[tile_index(s0 + 2, j)] = tot[2 * kLanes + l];
                smax[tile_index(s0 + 3, j)] = tot[3 * kLanes + l];
            }
        }
    }
}

/// exp(x) in float32 for −87 <= x <= 0 (NaN propagates), branch-free so that it vectorises:
/// Cody–Waite reduction x = n ln2 + r, |r| <= ln2/2, and the degree-6 Taylor polynomial of
/// exp(r) (relative error < 2e-7, about 2 ulp). The caller keeps x in range: a clamp against
/// a constant here lets GCC branch around the polynomial, which keeps the AVX2 clone scalar.
XANESNET_INLINE float exp_neg_f(float x) {
    const float shifter = 12582912.0f;  // 1.5 · 2^23: rounds to an integer in the low bits
    const float log2e = 1.44269504f;
    const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    const float t = x * log2e + shifter;
    const float n = t - shifter;
    const float r = (x - n * ln2_hi) - n * ln2_lo;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits;
    std::memcpy(&bits, &t, sizeof bits);
    bits = (bits << 23) + (uint32_t(127) << 23);  // 2^n
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/// w[s, j] = exp(−γ · d[s, j]) with d = 2 smax[s, j] − (z_sum[s] + c_sum[j]): the row sums are
/// added in float64 and rounded once; the distance is then as exact as smax. A negative
/// distance (rounding) counts as 0, one beyond d_max = 87 / γ as d_max (weights below
/// exp(−87) ≈ 1.6e-38 count as that); NaN propagates.
XANESNET_CLONES
void kernel_weights(const float* XANESNET_RESTRICT smax, const double* XANESNET_RESTRICT z_sum,
                    const double* XANESNET_RESTRICT c_sum, size_t n_rows, size_t nj, float gamma,
                    float d_max, float* XANESNET_RESTRICT w) {
    for (size_t b = 0; b < n_rows; b += kRows) {
        float zc[kRows];
        for (size_t j = 0; j < nj; ++j) {
            const size_t k = tile_index(b, j);
            for (size_t s = 0; s < kRows; ++s) zc[s] = static_cast<float>(z_sum[b + s] + c_sum[j]);
            for (size_t s = 0; s < kRows; ++s) {
                float d = 2.0f * smax[k + s] - zc[s];
                d = d < 0.0f ? 0.0f : d;
                d = d > d_max ? d_max : d;
                w[k + s] = exp_neg_f(-gamma * d);
            }
        }
    }
}

/// acc[s, :] += Σ_j w[s, j] · a[j, :] for n_rows sites (a multiple of kRows), nj centres and
/// rows of ep (multiple of kLanes) energies; kRows × kLanes accumulators stay in registers
/// while the centres run. The chunk's sum starts from zero and is added to acc at the end:
/// two-level float32 summation over the centres (a single running sum over 3264 centres of
/// alternating-sign α loses about three times more than torch's blocked sgemm).
XANESNET_CLONES
void accumulate(const float* XANESNET_RESTRICT w, size_t n_rows, size_t nj,
                const float* XANESNET_RESTRICT a, size_t ep, float* XANESNET_RESTRICT acc) {
    static_assert(kRows == 8, "accumulate is written out for 8 rows");
    for (size_t b = 0; b < n_rows; b += kRows) {
        float* XANESNET_RESTRICT out = acc + b * ep;
        for (size_t e0 = 0; e0 < ep; e0 += kLanes) {
            // one named accumulator per row: GCC keeps them in registers
            float r0[kLanes] = {}, r1[kLanes] = {}, r2[kLanes] = {}, r3[kLanes] = {};
            float r4[kLanes] = {}, r5[kLanes] = {}, r6[kLanes] = {}, r7[kLanes] = {};
            for (size_t j = 0; j < nj; ++j) {
                const float* XANESNET_RESTRICT aj = a + j * ep + e0;
                const float* XANESNET_RESTRICT wj = w + tile_index(b, j);
                const float w0 = wj[0], w1 = wj[1], w2 = wj[2], w3 = wj[3];
                const float w4 = wj[4], w5 = wj[5], w6 = wj[6], w7 = wj[7];
                for (size_t l = 0; l < kLanes; ++l) {
                    const float v = aj[l];
                    r0[l] += w0 * v;
                    r1[l] += w1 * v;
                    r2[l] += w2 * v;
                    r3[l] += w3 * v;
                    r4[l] += w4 * v;
                    r5[l] += w5 * v;
                    r6[l] += w6 * v;
                    r7[l] += w7 * v;
                }
            }
            for (size_t l = 0; l < kLanes; ++l) {
                out[0 * ep + e0 + l] += r0[l];
                out[1 * ep + e0 + l] += r1[l];
                out[2 * ep + e0 + l] += r2[l];
                out[3 * ep + e0 + l] += r3[l];
                out[4 * ep + e0 + l] += r4[l];
                out[5 * ep + e0 + l] += r5[l];
                out[6 * ep + e0 + l] += r6[l];
                out[7 * ep + e0 + l] += r7[l];
            }
        }
    }
}

}  // namespace

void laplacian_kernel_predict(const float* z, size_t n_sites, size_t n_features,
                              const float* centres, size_t n_centres, float gamma,
                              const float* coefficients, const float* y_mean, size_t n_energies,
                              float* out, int n_threads) {
    if (!(gamma >= 0.0f) || !std::isfinite(gamma))
        throw std::invalid_argument("gamma must be finite and >= 0");
    if (n_sites == 0) return;
    const size_t n_cp = round_up(n_centres, kLanes);  // padded centres
    const size_t ep = round_up(n_energies, kLanes);   // padded energies
    const int threads = resolve_threads(n_threads);

    // Model in kernel layout: centres transposed per group of kLanes, coefficient rows padded,
    // centre row sums in float64; padding centres have zero coefficients.
    Aligned<float> ct(n_cp * n_features), a_pad(n_cp * ep);
    Aligned<double> c_sum(n_cp);
    const long long n_c = static_cast<long long>(n_centres);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long long jj = 0; jj < n_c; ++jj) {
        const size_t j = static_cast<size_t>(jj);
        const float* src = centres + j * n_features;
        float* dst = ct.data() + (j / kLanes) * n_features * kLanes + j % kLanes;
        double sum = 0.0;
        for (size_t f = 0; f < n_features; ++f) {
            dst[f * kLanes] = src[f];
            sum += src[f];
        }
        c_sum.data()[j] = sum;
        std::memcpy(a_pad.data() + j * ep, coefficients + j * n_energies,
                    n_energies * sizeof(float));
    }

    const size_t n_tasks = (n_sites + kTaskSites - 1) / kTaskSites;
    const int team = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), n_tasks));
    std::vector<std::unique_ptr<Workspace>> spaces;
    for (int t = 0; t < team; ++t) spaces.push_back(std::make_unique<Workspace>(ep));
    const long long tasks = static_cast<long long>(n_tasks);
    const float d_max = gamma > 0.0f ? 87.0f / gamma : INFINITY;  // exp(−87) ≈ 1.6e-38

#pragma omp parallel num_threads(team)
    {
#ifdef XANESNET_HAVE_OPENMP
        Workspace& ws = *spaces[static_cast<size_t>(omp_get_thread_num())];
#else
        Workspace& ws = *spaces[0];
#endif
        const float* rows[kTaskSites];
#pragma omp for schedule(dynamic, 1)
        for (long long task = 0; task < tasks; ++task) {
            const size_t first = static_cast<size_t>(task) * kTaskSites;
            const size_t n_valid = std::min(kTaskSites, n_sites - first);
            const size_t n_rows = round_up(n_valid, kRows);
            // rows past the last site repeat the first one; their results are dropped
            for (size_t s = 0; s < n_rows; ++s)
                rows[s] = z + (first + (s < n_valid ? s : 0)) * n_features;
            for (size_t s = 0; s < n_rows; ++s) {
                double sum = 0.0;
                for (size_t f = 0; f < n_features; ++f) sum += rows[s][f];
                ws.z_sum.data()[s] = sum;
            }
            std::memset(static_cast<void*>(ws.acc.data()), 0, n_rows * ep * sizeof(float));
            for (size_t j0 = 0; j0 < n_cp; j0 += kChunk) {
                const size_t nj = std::min(kChunk, n_cp - j0);
                max_sums(rows, n_rows, n_features, ct.data() + j0 * n_features, nj / kLanes,
                         ws.tot.data(), ws.smax.data());
                kernel_weights(ws.smax.data(), ws.z_sum.data(), c_sum.data() + j0, n_rows, nj,
                               gamma, d_max, ws.w.data());
                accumulate(ws.w.data(), n_rows, nj, a_pad.data() + j0 * ep, ep, ws.acc.data());
            }
            for (size_t s = 0; s < n_valid; ++s) {
                const float* src = ws.acc.data() + s * ep;
                float* dst = out + (first + s) * n_energies;
                for (size_t e = 0; e < n_energies; ++e) dst[e] = src[e] + y_mean[e];
            }
        }
    }
}

}  // namespace xanesnet
