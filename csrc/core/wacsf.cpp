// wACSF kernel. Per site: neighbours from a cell list, then G1/G2 over neighbours and G4 over
// neighbour pairs. G4 is organised so that the innermost loop runs over the second neighbour k
// of a pair with no branches or libm calls, which lets the compiler vectorise it:
//   G4[m, c] += a[m, j] · Σ_k a[m, k] · exp(−η_m (r_jk − μ_m)²) · fc(r_jk) · A_c(cos θ_jk)
// where a[m, j] = w_j fc(r_ij) exp(−η_m (r_ij − μ_m)²) is computed once per neighbour and
// A_c = (1 + λ cos θ)^ζ for each (λ, ζ) combination c. One exp per pair and radial index.
#include "xanesnet/wacsf.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastmath.hpp"
#include "threading.hpp"
#include "xanesnet/neighbours.hpp"

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

constexpr size_t kLanes = 8;  // pair arrays are padded to a multiple of this

constexpr size_t kPairTile = 256;  // pairs per G4 tile; a multiple of kLanes

inline size_t padded(size_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

/// Scratch space of one thread, reused across sites.
struct Workspace {
    std::vector<Neighbour> found;
    std::vector<double> x, y, z, r, inv_r, wfc, fc, w;  // (n_padded,) per neighbour
    std::vector<double> channel_w, gauss;        // (n_channels, n_padded), (n_g2,)
    // (n_pairs_padded,) per unordered neighbour pair; padding entries have weight 0
    std::vector<double> rj, rk, rjk, sum_sq, cos_t, weight;
    std::vector<double> ang;  // (n_combos, kPairTile) weight · (1 + λ cos θ)^ζ of one tile
    std::vector<double> base, power;  // (kPairTile,) max(1 + λ cos θ, 0) and its power
    std::vector<double> lanes;        // (n_g4, kLanes) G4 partial sums

    void resize(size_t n, size_t n_pairs_padded, size_t n_combos) {
        // per-neighbour arrays: padded with zeros (w = 0 makes padding contribute nothing)
        for (auto* v : {&x, &y, &z, &r, &inv_r, &wfc, &fc, &w}) v->assign(padded(n), 0.0);
        for (auto* v : {&rj, &rk, &rjk, &sum_sq, &cos_t, &weight}) v->resize(n_pairs_padded);
        base.resize(kPairTile);
        power.resize(kPairTile);
        ang.resize(n_combos * kPairTile);
    }
};

struct AngularPlan {
    bool integer_zetas = true;
    bool centred_g4 = true;         // all G4 centres μ = 0: one squared-distance sum per pair
    std::vector<int> int_zetas;     // (n_zetas,)
    std::vector<double> prefactor;  // (n_zetas,) 2^(1 − ζ)
};

/// G1 of one site and the per-neighbour cutoff and weight × cutoff. Neighbour arrays are
/// padded to a multiple of kLanes with w = 0, so padding contributes exact zeros; the sum runs
/// in kLanes interleaved partial sums (fixed order, vectorisable).
XANESNET_CLONES
double cutoff_terms(size_t n, size_t n_padded, const double* r, const double* w, double* fc,
                    double* wfc, double half_pi_over_rmax, double r_max) {
    double acc[kLanes] = {};
    for (size_t q = 0; q < n_padded; q += kLanes)
        for (size_t l = 0; l < kLanes; ++l) {
            const double f = fastmath::cosine_cutoff(r[q + l], half_pi_over_rmax, true, r_max);
            fc[q + l] = f;
            wfc[q + l] = w[q + l] * f;
            acc[l] += q + l < n ? f : 0.0;
        }
    double g1 = 0.0;
    for (size_t l = 0; l < kLanes; ++l) g1 += acc[l];
    return g1;
}

/// G2 of one site, the main one and those of the extra channels, neighbour by neighbour:
/// the row gauss[m] = fc_q · exp(−η_m (r_q − μ_m)²) over all radial indices m (vectorised over
/// m) serves every sum it enters, G2[m] += w_q · gauss[m] and G2_c[m] += cw[c, q] · gauss[m]
/// for the channels with a nonzero weight (one per neighbour for element groups). One exp per
/// neighbour and radial index, shared by all channels.
XANESNET_CLONES
void g2_terms(size_t n, const double* r, const double* fc, const double* w, const double* cw,
              size_t cw_stride, size_t n_channels, const double* XANESNET_RESTRICT g2_eta,
              const double* XANESNET_RESTRICT g2_mu, size_t n_g2,
              double* XANESNET_RESTRICT gauss, double* XANESNET_RESTRICT g2,
              double* XANESNET_RESTRICT channel_g2) {
    for (size_t q = 0; q < n; ++q) {
        const double r_q = r[q], fc_q = fc[q], w_q = w[q];
        for (size_t m = 0; m < n_g2; ++m) {
            const double t = r_q - g2_mu[m];
            gauss[m] = fc_q * fastmath::exp_neg(-g2_eta[m] * t * t);
        }
        for (size_t m = 0; m < n_g2; ++m) g2[m] += w_q * gauss[m];
        for (size_t c = 0; c < n_channels; ++c) {
            const double weight = cw[c * cw_stride + q];
            if (weight == 0.0) continue;
            double* XANESNET_RESTRICT out = channel_g2 + c * n_g2;
            for (size_t m = 0; m < n_g2; ++m) out[m] += weight * gauss[m];
        }
    }
}

/// Pair arrays of neighbour j against neighbours k = j+1 … j+count. Centred G4 needs only the
/// sum of squared distances per pair, shifted G4 the three distances, so each mode writes only
/// what its G4 sums read (and r_jk, which the distance check reads).
template <bool kCentred>
XANESNET_INLINE void pair_row(size_t count, double xj, double yj, double zj, double r_j,
                              double inv_rj, double wj, const double* XANESNET_RESTRICT xk,
                              const double* XANESNET_RESTRICT yk,
                              const double* XANESNET_RESTRICT zk,
                              const double* XANESNET_RESTRICT rk_in,
                              const double* XANESNET_RESTRICT inv_rk,
                              const double* XANESNET_RESTRICT wk, double half_pi_over_rmax,
                              bool zero_beyond, double r_max, double* XANESNET_RESTRICT rj_,
                              double* XANESNET_RESTRICT rk_, double* XANESNET_RESTRICT rjk_,
                              double* XANESNET_RESTRICT sq_, double* XANESNET_RESTRICT cos_,
                              double* XANESNET_RESTRICT wt_) {
    for (size_t q = 0; q < count; ++q) {
        const double dx = xk[q] - xj, dy = yk[q] - yj, dz = zk[q] - zj;
        const double d2 = dx * dx + dy * dy + dz * dz;
        const double d = std::sqrt(d2);
        rjk_[q] = d;
        if (kCentred) {
            sq_[q] = r_j * r_j + rk_in[q] * rk_in[q] + d2;
        } else {
            rj_[q] = r_j;
            rk_[q] = rk_in[q];
        }
        cos_[q] = (xk[q] * xj + yk[q] * yj + zk[q] * zj) * (inv_rk[q] * inv_rj);
        wt_[q] = wj * wk[q] * fastmath::cosine_cutoff(d, half_pi_over_rmax, zero_beyond, r_max);
    }
}

/// Flat arrays over all unordered neighbour pairs (j < k); see pair_row for which are written.
/// Returns the smallest r_jk, and its (first) pair index when it is below min_distance.
XANESNET_CLONES
double build_pairs(size_t n, const double* x, const double* y, const double* z, const double* r,
                   const double* inv_r, const double* wfc, double half_pi_over_rmax,
                   bool zero_beyond, double r_max, bool centred, double* rj, double* rk,
                   double* rjk, double* sum_sq, double* cos_t, double* weight,
                   double min_distance, size_t* min_pair) {
    size_t p0 = 0;
    double min_d = 1e300;
    for (size_t j = 0; j + 1 < n; ++j) {
        const size_t count = n - j - 1, k = j + 1;
        if (centred)
            pair_row<true>(count, x[j], y[j], z[j], r[j], inv_r[j], wfc[j], x + k, y + k, z + k,
                           r + k, inv_r + k, wfc + k, half_pi_over_rmax, zero_beyond, r_max,
                           rj + p0, rk + p0, rjk + p0, sum_sq + p0, cos_t + p0, weight + p0);
        else
            pair_row<false>(count, x[j], y[j], z[j], r[j], inv_r[j], wfc[j], x + k, y + k, z + k,
                            r + k, inv_r + k, wfc + k, half_pi_over_rmax, zero_beyond, r_max,
                            rj + p0, rk + p0, rjk + p0, sum_sq + p0, cos_t + p0, weight + p0);
        p0 += count;
    }
    // smallest r_jk: lane-wise minimum (vectorised), then its index only when it matters
    double lanes[kLanes];
    for (size_t l = 0; l < kLanes; ++l) lanes[l] = 1e300;
    size_t p = 0;
    for (; p + kLanes <= p0; p += kLanes)
        for (size_t l = 0; l < kLanes; ++l)
            lanes[l] = rjk[p + l] < lanes[l] ? rjk[p + l] : lanes[l];
    for (size_t l = 0; p + l < p0; ++l) lanes[l] = rjk[p + l] < lanes[l] ? rjk[p + l] : lanes[l];
    for (size_t l = 0; l < kLanes; ++l) min_d = lanes[l] < min_d ? lanes[l] : min_d;
    if (min_d < min_distance) {
        for (size_t q = 0; q < p0; ++q)
            if (rjk[q] == min_d) {
                *min_pair = q;
                break;
            }
    }
    return min_d;
}

/// Drops pairs with zero weight (r_jk beyond the cutoff, about half of all pairs in the
/// default mode: they contribute exactly nothing) from the arrays the G4 sums read (`arrays`,
/// `weight` last), then zero-pads them to a multiple of kLanes. Returns the padded number of
/// pairs kept.
template <size_t kArrays>
size_t compact_pairs(size_t n_pairs, double* const (&arrays)[kArrays]) {
    const double* weight = arrays[kArrays - 1];
    size_t kept = 0;
    for (size_t p = 0; p < n_pairs; ++p) {
        const bool keep = weight[p] != 0.0;
        for (size_t a = 0; a < kArrays; ++a) arrays[a][kept] = arrays[a][p];
        kept += keep;
    }
    const size_t end = padded(kept);
    for (size_t a = 0; a < kArrays; ++a) std::fill(arrays[a] + kept, arrays[a] + end, 0.0);
    return end;
}

/// Angular factors weight · (1 + λ cos θ)^ζ for every (λ, ζ) combination (λ outer, ζ inner).
/// Integer ζ: the power is built in whole passes over the pairs (vectorised) by squaring while
/// that does not overshoot, then multiplying by the base, carried over from one ζ to the next
/// when ζ grows (ζ = 1, 2, 4, 8: three passes). `base` and `power` are (n_pairs_padded,)
/// scratch.
XANESNET_CLONES
void angular_terms(size_t n_pairs_padded, const double* XANESNET_RESTRICT cos_t,
                   const double* XANESNET_RESTRICT weight, const double* lambdas, size_t n_lambdas,
                   const double* zetas, size_t n_zetas, const AngularPlan& plan,
                   double* XANESNET_RESTRICT base, double* XANESNET_RESTRICT power,
                   double* XANESNET_RESTRICT ang) {
    for (size_t l = 0; l < n_lambdas; ++l) {
        const double lambda = lambdas[l];
        for (size_t p = 0; p < n_pairs_padded; ++p) {
            const double b = 1.0 + lambda * cos_t[p];
            base[p] = b < 0.0 ? 0.0 : b;
        }
        int have = 0;  // power[] holds base^have (0: not yet filled)
        for (size_t zi = 0; zi < n_zetas; ++zi) {
            double* XANESNET_RESTRICT out = ang + (l * n_zetas + zi) * n_pairs_padded;
            if (plan.integer_zetas) {
                const int want = plan.int_zetas[zi];
                if (have == 0 || want < have) {
                    std::copy(base, base + n_pairs_padded, power);
                    have = 1;
                }
                while (have < want) {
                    if (2 * have <= want) {  // squaring: ζ = 1, 2, 4, 8 in three passes
                        for (size_t p = 0; p < n_pairs_padded; ++p) power[p] *= power[p];
                        have *= 2;
                    } else {
                        for (size_t p = 0; p < n_pairs_padded; ++p) power[p] *= base[p];
                        ++have;
                    }
                }
                for (size_t p = 0; p < n_pairs_padded; ++p) out[p] = weight[p] * power[p];
            } else {
                for (size_t p = 0; p < n_pairs_padded; ++p)
                    out[p] = weight[p] * std::pow(base[p], zetas[zi]);
            }
        }
    }
}

/// G4 lane sums over one tile of pairs: for each radial index m and combination c,
///   lanes[m, c, l] += Σ_{p ≡ l (mod kLanes)} ang[c, p] · exp(−η_m D_p),
///   D_p = (r_j − μ_m)² + (r_k − μ_m)² + (r_jk − μ_m)²,
/// in kLanes interleaved partial sums (a fixed order, so results do not depend on threads or
/// on the tiling), which the compiler turns into SIMD registers.
XANESNET_CLONES
void g4_sums(size_t n_pairs_padded, const double* rj, const double* rk, const double* rjk,
             const double* sum_sq, const double* ang, size_t n_combos, const double* g4_eta,
             const double* g4_mu, size_t n_radial, bool centred, double* lanes) {
    constexpr size_t kMaxCombos = 16;
    double e[kLanes];
    for (size_t m = 0; m < n_radial; ++m) {
        const double eta = g4_eta[m], mu = g4_mu[m];
        for (size_t c0 = 0; c0 < n_combos; c0 += kMaxCombos) {
            const size_t nc = std::min(kMaxCombos, n_combos - c0);
            double acc[kMaxCombos][kLanes];
            for (size_t c = 0; c < nc; ++c)
                for (size_t l = 0; l < kLanes; ++l)
                    acc[c][l] = lanes[(m * n_combos + c0 + c) * kLanes + l];
            for (size_t p = 0; p < n_pairs_padded; p += kLanes) {
                if (centred) {
                    for (size_t l = 0; l < kLanes; ++l)
                        e[l] = fastmath::exp_neg(-eta * sum_sq[p + l]);
                } else {
                    for (size_t l = 0; l < kLanes; ++l) {
                        double a = rj[p + l] - mu, b = rk[p + l] - mu, c = rjk[p + l] - mu;
                        e[l] = fastmath::exp_neg(-eta * (a * a + b * b + c * c));
                    }
                }
                for (size_t c = 0; c < nc; ++c) {
                    const double* angc = ang + (c0 + c) * n_pairs_padded + p;
                    for (size_t l = 0; l < kLanes; ++l) acc[c][l] += e[l] * angc[l];
                }
            }
            for (size_t c = 0; c < nc; ++c)
                for (size_t l = 0; l < kLanes; ++l)
                    lanes[(m * n_combos + c0 + c) * kLanes + l] = acc[c][l];
        }
    }
}

/// Descriptor of one site; returns its status.
int32_t one_site(const CellList& cells, const int32_t* numbers, size_t centre,
                 const WacsfParams& p, const AngularPlan& plan, Workspace& ws, double* out,
                 int64_t* close_pair, double* close_distance) {
    const size_t n_features = p.n_features();
    std::fill(out, out + n_features, 0.0);
    if (!cells.neighbours(centre, ws.found)) {  // stopped before allocating anything per pair
        close_pair[0] = static_cast<int64_t>(centre);
        return SITE_TOO_MANY_NEIGHBOURS;
    }
    const size_t n = ws.found.size();
    if (n == 0) return SITE_OK;
    const size_t n_combos = p.n_lambdas * p.n_zetas;
    const size_t n_pairs = n * (n - 1) / 2;
    const size_t n_pairs_padded = padded(n_pairs);
    ws.resize(n, n_pairs_padded, n_combos);
    const size_t n_padded = padded(n);
    if (p.n_channels) ws.channel_w.assign(p.n_channels * n_padded, 0.0);
    ws.gauss.resize(p.n_g2);

    const double half_pi_over_rmax = 1.5707963267948966 / p.r_max;
    double min_centre = 1e300;
    size_t min_q = 0;
    for (size_t q = 0; q < n; ++q) {
        const Neighbour& nb = ws.found[q];
        ws.x[q] = nb.vector[0];
        ws.y[q] = nb.vector[1];
        ws.z[q] = nb.vector[2];
        ws.r[q] = nb.distance;
        ws.inv_r[q] = 1.0 / nb.distance;
        const int32_t Z = numbers[nb.j];
        const bool known = Z >= 0 && static_cast<size_t>(Z) < p.n_elements;
        ws.w[q] = known ? p.element_weights[Z] : 0.0;
        for (size_t c = 0; c < p.n_channels; ++c)
            ws.channel_w[c * n_padded + q] = known ? p.channel_weights[c * p.n_elements + Z] : 0.0;
        if (nb.distance < min_centre) {
            min_centre = nb.distance;
            min_q = q;
        }
    }
    out[0] = cutoff_terms(n, n_padded, ws.r.data(), ws.w.data(), ws.fc.data(), ws.wfc.data(),
                          half_pi_over_rmax, p.r_max);
    g2_terms(n, ws.r.data(), ws.fc.data(), ws.w.data(), ws.channel_w.data(), n_padded,
             p.n_channels, p.g2_eta, p.g2_mu, p.n_g2, ws.gauss.data(), out + 1,
             out + 1 + p.n_g2 + p.n_g4_radial * n_combos);
    size_t min_pair = 0;
    const double min_pair_d = build_pairs(
        n, ws.x.data(), ws.y.data(), ws.z.data(), ws.r.data(), ws.inv_r.data(), ws.wfc.data(),
        half_pi_over_rmax, !p.rjk_raw_cosine, p.r_max, plan.centred_g4, ws.rj.data(),
        ws.rk.data(), ws.rjk.data(), ws.sum_sq.data(), ws.cos_t.data(), ws.weight.data(),
        p.min_distance, &min_pair);

    if (min_centre < p.min_distance || min_pair_d < p.min_distance) {
        std::fill(out, out + n_features, 0.0);
        if (min_centre <= min_pair_d) {
            close_pair[0] = static_cast<int64_t>(centre);
            close_pair[1] = ws.found[min_q].j;
            *close_distance = min_centre;
        } else {
            // recover (j, k) from the flat pair index
            size_t j = 0, p0 = 0;
            while (p0 + (n - j - 1) <= min_pair) p0 += n - (j++) - 1;
            const size_t k = j + 1 + (min_pair - p0);
            close_pair[0] = ws.found[j].j;
            close_pair[1] = ws.found[k].j;
            *close_distance = min_pair_d;
        }
        return SITE_ATOMS_TOO_CLOSE;
    }

    if (p.n_g4_radial == 0) return SITE_OK;  // the pairs only served the distance check
    size_t n_kept;
    if (plan.centred_g4) {
        double* const arrays[] = {ws.sum_sq.data(), ws.cos_t.data(), ws.weight.data()};
        n_kept = compact_pairs(n_pairs, arrays);
    } else {
        double* const arrays[] = {ws.rj.data(), ws.rk.data(), ws.rjk.data(), ws.cos_t.data(),
                                  ws.weight.data()};
        n_kept = compact_pairs(n_pairs, arrays);
    }
    // Tiles of kPairTile pairs, so that the angular factors of a tile stay in L1 cache while
    // every radial index reads them; the lane sums carry over from tile to tile.
    const size_t n_g4 = p.n_g4_radial * n_combos;
    ws.lanes.assign(n_g4 * kLanes, 0.0);
    for (size_t t0 = 0; t0 < n_kept; t0 += kPairTile) {
        const size_t len = std::min(kPairTile, n_kept - t0);
        angular_terms(len, ws.cos_t.data() + t0, ws.weight.data() + t0, p.lambdas, p.n_lambdas,
                      p.zetas, p.n_zetas, plan, ws.base.data(), ws.power.data(), ws.ang.data());
        g4_sums(len, ws.rj.data() + t0, ws.rk.data() + t0, ws.rjk.data() + t0,
                ws.sum_sq.data() + t0, ws.ang.data(), n_combos, p.g4_eta, p.g4_mu,
                p.n_g4_radial, plan.centred_g4, ws.lanes.data());
    }
    double* g4_out = out + 1 + p.n_g2;
    for (size_t f = 0; f < n_g4; ++f) {
        double sum = 0.0;
        for (size_t l = 0; l < kLanes; ++l) sum += ws.lanes[f * kLanes + l];
        g4_out[f] = sum * plan.prefactor[f % n_combos % p.n_zetas];
    }
    return SITE_OK;
}

}  // namespace

void wacsf_batch(const StructureBatch& batch, const WacsfParams& p, double* out,
                 const SiteReport& report, int n_threads) {
    if (!(p.r_max > 0.0)) throw std::invalid_argument("r_max must be positive");
    if (!(p.min_distance > 0.0) || !std::isfinite(p.min_distance))
        throw std::invalid_argument("min_distance must be positive and finite");
    if (!(p.limits.max_images >= 1.0) || !(p.limits.max_length > 0.0))
        throw std::invalid_argument("limits: max_images must be >= 1 and max_length > 0");
    AngularPlan plan;
    for (size_t m = 0; m < p.n_g4_radial; ++m) plan.centred_g4 = plan.centred_g4 && p.g4_mu[m] == 0.0;
    for (size_t zi = 0; zi < p.n_zetas; ++zi) {
        const double zeta = p.zetas[zi];
        if (!(zeta > 0.0)) throw std::invalid_argument("zetas must be positive");
        plan.prefactor.push_back(std::pow(2.0, 1.0 - zeta));
        const bool is_int = zeta == std::floor(zeta) && zeta <= 64.0;
        plan.integer_zetas = plan.integer_zetas && is_int;
        plan.int_zetas.push_back(is_int ? static_cast<int>(zeta) : 0);
    }
    for (size_t s = 0; s < batch.n_sites; ++s) {
        const int64_t st = batch.site_structures[s];
        if (st < 0 || static_cast<size_t>(st) >= batch.n_structures)
            throw std::invalid_argument("site " + std::to_string(s) + ": structure index out of range");
        const int64_t n_atoms = batch.atom_offsets[st + 1] - batch.atom_offsets[st];
        if (batch.site_atoms[s] < 0 || batch.site_atoms[s] >= n_atoms)
            throw std::invalid_argument("site " + std::to_string(s) + ": atom index out of range");
    }

    // One cell list per structure that has sites, built in parallel, then parallel over sites.
    // No exception may leave an OpenMP region: the first is kept and rethrown after it.
    std::vector<std::unique_ptr<CellList>> cell_lists(batch.n_structures);
    std::vector<uint8_t> needed(batch.n_structures, 0);
    for (size_t s = 0; s < batch.n_sites; ++s) needed[batch.site_structures[s]] = 1;
    const int threads = resolve_threads(n_threads);
    std::string error;
    std::exception_ptr failure;
    const long long n_structures = static_cast<long long>(batch.n_structures);
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (long long st = 0; st < n_structures; ++st) {
        if (!needed[st]) continue;
        const int64_t begin = batch.atom_offsets[st];
        const size_t n_atoms = static_cast<size_t>(batch.atom_offsets[st + 1] - begin);
        bool pbc[3] = {batch.pbc[3 * st] != 0, batch.pbc[3 * st + 1] != 0,
                       batch.pbc[3 * st + 2] != 0};
        try {
            cell_lists[st] = std::make_unique<CellList>(batch.positions + 3 * begin, n_atoms,
                                                        batch.cells + 9 * st, pbc, p.r_max,
                                                        p.limits);
        } catch (const std::invalid_argument& ex) {
#pragma omp critical(xanesnet_error)
            if (error.empty()) error = "structure " + std::to_string(st) + ": " + ex.what();
        } catch (...) {
#pragma omp critical(xanesnet_error)
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
    if (!error.empty()) throw std::invalid_argument(error);

    const size_t n_features = p.n_features();
    const long long n_sites = static_cast<long long>(batch.n_sites);
#pragma omp parallel num_threads(threads)
    {
        Workspace ws;
#pragma omp for schedule(dynamic, 8)
        for (long long s = 0; s < n_sites; ++s) {
            const int64_t st = batch.site_structures[s];
            const int64_t begin = batch.atom_offsets[st];
            const CellList& cells = *cell_lists[st];
            double* row = out + s * n_features;
            if (cells.status() != SITE_OK) {  // the structure is refused as a whole
                std::fill(row, row + n_features, 0.0);
                report.status[s] = cells.status();
                report.close_pair[2 * s] = cells.status_atom();
                report.close_distance[s] = cells.status_value();
                continue;
            }
            try {
                report.status[s] =
                    one_site(cells, batch.numbers + begin,
                             static_cast<size_t>(batch.site_atoms[s]), p, plan, ws, row,
                             report.close_pair + 2 * s, report.close_distance + s);
            } catch (...) {
#pragma omp critical(xanesnet_error)
                if (!failure) failure = std::current_exception();
            }
        }
    }
    if (failure) std::rethrow_exception(failure);
}

}  // namespace xanesnet
