// Cell-list neighbour search for molecules and (partially) periodic triclinic cells.
//
// Atoms are binned by their coordinates f in a basis made of the periodic lattice vectors,
// completed by unit vectors orthogonal to them on non-periodic axes. On periodic axes f is
// wrapped into [0, 1) (remembering the image w the atom was wrapped from) and the bins tile the
// unit cell; on non-periodic axes the bins tile the atoms' bounding box. A centre's neighbours
// lie within |Δf_a| <= cutoff·|b*_a| on each axis (b*_a: reciprocal vector), so a query scans the
// range of bins that interval overlaps; on periodic axes a bin index beyond the cell is the bin
// seen through a periodic image, which is how cutoffs larger than the cell are handled. The final
// vector of an accepted pair is recomputed from the caller's (unwrapped) positions as
// D = r_j + S·cell − r_i with S = t + w_i − w_j, exactly as ASE reports it.
#include "xanesnet/neighbours.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#include "threading.hpp"

namespace xanesnet {

namespace {

// Molecules up to this size are searched by scanning every atom (no binning at all).
constexpr size_t kBruteForceMaxAtoms = 128;
// Bins per cutoff length: 2 scans about (2.5 cutoff)^3 per centre instead of (3 cutoff)^3.
constexpr double kBinsPerCutoff = 2.0;
// At most this many bins per atom (sparse structures get wider bins).
constexpr int64_t kMaxBinsPerAtom = 2;

double norm3(const double* a) { return std::sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]); }

void cross(const double* a, const double* b, double* c) {
    c[0] = a[1] * b[2] - a[2] * b[1];
    c[1] = a[2] * b[0] - a[0] * b[2];
    c[2] = a[0] * b[1] - a[1] * b[0];
}

double det3(const double* m) {
    return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
           m[2] * (m[3] * m[7] - m[4] * m[6]);
}

/// Inverse of a 3x3 row-major matrix with a non-zero determinant.
void inverse3(const double* m, double* inv) {
    const double det = det3(m);
    inv[0] = (m[4] * m[8] - m[5] * m[7]) / det;
    inv[1] = (m[2] * m[7] - m[1] * m[8]) / det;
    inv[2] = (m[1] * m[5] - m[2] * m[4]) / det;
    inv[3] = (m[5] * m[6] - m[3] * m[8]) / det;
    inv[4] = (m[0] * m[8] - m[2] * m[6]) / det;
    inv[5] = (m[2] * m[3] - m[0] * m[5]) / det;
    inv[6] = (m[3] * m[7] - m[4] * m[6]) / det;
    inv[7] = (m[1] * m[6] - m[0] * m[7]) / det;
    inv[8] = (m[0] * m[4] - m[1] * m[3]) / det;
}

int64_t floor_div(int64_t a, int64_t n) {
    int64_t q = a / n;
    return (a % n != 0 && a < 0) ? q - 1 : q;
}

/// Double to int64 for bin arithmetic, saturated far outside any realistic range.
int64_t floor_to_int(double x) {
    constexpr double limit = 4.0e15;
    if (!(x > -limit)) return static_cast<int64_t>(-limit);
    if (x > limit) return static_cast<int64_t>(limit);
    return static_cast<int64_t>(std::floor(x));
}

}  // namespace

CellList::CellList(const double* positions, size_t n_atoms, const double* cell, const bool* pbc,
                   double cutoff, const SearchLimits& limits)
    : positions_(positions), n_atoms_(n_atoms), cutoff_(cutoff), limits_(limits) {
    if (!(cutoff > 0.0) || !std::isfinite(cutoff))
        throw std::invalid_argument("cutoff must be positive and finite");
    for (int k = 0; k < 9; ++k) cell_[k] = cell[k];
    int n_periodic = 0;
    for (int a = 0; a < 3; ++a) {
        pbc_[a] = pbc[a];
        if (!pbc_[a]) continue;
        ++n_periodic;
        for (int d = 0; d < 3; ++d)
            if (!std::isfinite(cell_[3 * a + d]))
                throw std::invalid_argument("periodic lattice vectors must be finite");
    }
    // Non-periodic rows play no part in the result (shifts are zero along them).
    for (int a = 0; a < 3; ++a)
        if (!pbc_[a])
            for (int d = 0; d < 3; ++d) cell_[3 * a + d] = 0.0;

    double max_abs = 0.0;
    int64_t far_atom = -1;
    double far_value = 0.0;
    for (size_t i = 0; i < n_atoms; ++i) {
        double m = 0.0;
        for (int d = 0; d < 3; ++d) {
            const double x = positions[3 * i + d];
            if (!std::isfinite(x))
                throw std::invalid_argument("positions must be finite (atom " + std::to_string(i) +
                                            ")");
            m = std::max(m, std::fabs(x));
        }
        max_abs = std::max(max_abs, m);
        if (far_atom < 0 && !(m <= limits_.max_length)) {
            far_atom = static_cast<int64_t>(i);
            far_value = m;
        }
    }
    // Lengths first: beyond them the cell geometry below would overflow or lose all precision.
    double cell_max = 0.0;
    for (int k = 0; k < 9; ++k) cell_max = std::max(cell_max, std::fabs(cell_[k]));
    if (!(cell_max <= limits_.max_length)) {
        refuse(SITE_TOO_FAR, -1, cell_max);
        return;
    }
    if (far_atom >= 0) {
        refuse(SITE_TOO_FAR, far_atom, far_value);
        return;
    }

    // Basis: periodic lattice vectors, completed by orthonormal vectors orthogonal to them.
    double basis[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    int per[3], non[3], n_non = 0;
    for (int a = 0, n_per = 0; a < 3; ++a) {
        if (pbc_[a])
            per[n_per++] = a;
        else
            non[n_non++] = a;
    }
    const double singular_tol = 1e-10;
    for (int k = 0; k < n_periodic; ++k) {
        const double* v = cell_ + 3 * per[k];
        if (!(norm3(v) > 0.0)) throw std::invalid_argument("periodic lattice vector is zero");
        for (int d = 0; d < 3; ++d) basis[3 * per[k] + d] = v[d];
    }
    if (n_periodic == 3) {
        const double volume = std::fabs(det3(cell_));
        if (!(volume > singular_tol * norm3(cell_) * norm3(cell_ + 3) * norm3(cell_ + 6)))
            throw std::invalid_argument("periodic lattice vectors are singular");
    } else if (n_periodic == 2) {
        const double* a = cell_ + 3 * per[0];
        const double* b = cell_ + 3 * per[1];
        double n[3];
        cross(a, b, n);
        const double area = norm3(n);
        if (!(area > singular_tol * norm3(a) * norm3(b)))
            throw std::invalid_argument("periodic lattice vectors are singular");
        for (int d = 0; d < 3; ++d) basis[3 * non[0] + d] = n[d] / area;
    } else if (n_periodic == 1) {
        const double* a = cell_ + 3 * per[0];
        // the Cartesian axis least aligned with a gives a well-conditioned orthogonal vector
        int least = 0;
        for (int d = 1; d < 3; ++d)
            if (std::fabs(a[d]) < std::fabs(a[least])) least = d;
        double e[3] = {0, 0, 0}, u[3], v[3];
        e[least] = 1.0;
        cross(a, e, u);
        const double nu = norm3(u);
        for (int d = 0; d < 3; ++d) u[d] /= nu;
        cross(a, u, v);
        const double nv = norm3(v);
        for (int d = 0; d < 3; ++d) {
            basis[3 * non[0] + d] = u[d];
            basis[3 * non[1] + d] = v[d] / nv;
        }
    }
    inverse3(basis, inverse_);

    // |b*_a| = 1 / (height of the cell along a): a search crosses about 1 + 2 cutoff |b*_a|
    // layers of images on periodic axis a. Bounded before any per-atom work.
    double recip[3];
    for (int a = 0; a < 3; ++a)
        recip[a] = std::sqrt(inverse_[a] * inverse_[a] + inverse_[3 + a] * inverse_[3 + a] +
                             inverse_[6 + a] * inverse_[6 + a]);
    for (int a = 0; a < 3; ++a)
        if (pbc_[a]) images_ *= 1.0 + 2.0 * cutoff_ * recip[a];
    if (!(images_ <= limits_.max_images)) {
        refuse(SITE_TOO_MANY_IMAGES, -1, images_);
        return;
    }

    double cell_extent = 0.0;
    for (int a = 0; a < 3; ++a) cell_extent += norm3(cell_ + 3 * a);
    // Rounding slack: the search runs on wrapped positions, the final test on the caller's.
    const double search = cutoff_ + 1e-9 * (cutoff_ + max_abs + cell_extent);
    search2_ = search * search;
    const double inner = std::max(0.0, cutoff_ - (search - cutoff_));
    inner2_ = inner * inner;

    if (n_periodic == 0 && n_atoms_ <= kBruteForceMaxAtoms) {
        brute_force_ = true;
        return;
    }

    // Coordinates in the basis, wrapped on periodic axes.
    atom_u_.resize(3 * n_atoms_);
    atom_wrap_.assign(3 * n_atoms_, 0);
    double lo[3], hi[3];
    for (int a = 0; a < 3; ++a) {
        lo[a] = std::numeric_limits<double>::infinity();
        hi[a] = -std::numeric_limits<double>::infinity();
    }
    for (size_t i = 0; i < n_atoms_; ++i) {
        const double* r = positions_ + 3 * i;
        for (int a = 0; a < 3; ++a) {
            double f = r[0] * inverse_[a] + r[1] * inverse_[3 + a] + r[2] * inverse_[6 + a];
            if (pbc_[a]) {
                const double w = std::floor(f);
                if (!(std::fabs(w) < kMaxCellsAway)) {
                    double m = 0.0;
                    for (int d = 0; d < 3; ++d) m = std::max(m, std::fabs(r[d]));
                    atom_u_.clear();
                    atom_wrap_.clear();
                    refuse(SITE_TOO_FAR, static_cast<int64_t>(i), m);
                    return;
                }
                f -= w;
                auto wi = static_cast<int32_t>(w);
                if (f >= 1.0) {  // rounding of a tiny negative coordinate
                    f = 0.0;
                    ++wi;
                }
                if (f < 0.0) f = 0.0;
                atom_wrap_[3 * i + a] = wi;
            } else {
                lo[a] = std::min(lo[a], f);
                hi[a] = std::max(hi[a], f);
            }
            atom_u_[3 * i + a] = f;
        }
    }

    // Bins: about kBinsPerCutoff per cutoff length, at most kMaxBinsPerAtom per atom overall.
    double extent[3];
    for (int a = 0; a < 3; ++a) {
        extent[a] = pbc_[a] ? 1.0 : (n_atoms_ ? hi[a] - lo[a] : 0.0);
        const double n = kBinsPerCutoff * extent[a] / (cutoff_ * recip[a]);
        n_bins_[a] = std::max<int64_t>(1, floor_to_int(std::min(n, 1e6)));
    }
    const int64_t max_bins = std::max<int64_t>(1, kMaxBinsPerAtom * static_cast<int64_t>(n_atoms_));
    while (n_bins_[0] * n_bins_[1] * n_bins_[2] > max_bins) {
        int widest = 0;
        for (int a = 1; a < 3; ++a)
            if (n_bins_[a] > n_bins_[widest]) widest = a;
        n_bins_[widest] = std::max<int64_t>(1, n_bins_[widest] / 2);
    }
    for (int a = 0; a < 3; ++a) {
        if (pbc_[a]) {
            origin_[a] = 0.0;
            scale_[a] = static_cast<double>(n_bins_[a]);
        } else {
            origin_[a] = n_atoms_ ? lo[a] : 0.0;
            const double width =
                n_bins_[a] > 1 ? extent[a] / static_cast<double>(n_bins_[a])
                               : std::max(extent[a], cutoff_ * recip[a]);
            scale_[a] = 1.0 / width;
        }
        reach_[a] = search * recip[a] * scale_[a];
    }

    // Counting sort of the atoms by bin.
    const auto n_bins = static_cast<size_t>(n_bins_[0] * n_bins_[1] * n_bins_[2]);
    std::vector<size_t> atom_bin(n_atoms_);
    bin_start_.assign(n_bins + 1, 0);
    for (size_t i = 0; i < n_atoms_; ++i) {
        int64_t b[3];
        for (int a = 0; a < 3; ++a) {
            double& u = atom_u_[3 * i + a];
            u = (u - origin_[a]) * scale_[a];
            b[a] = std::min(std::max<int64_t>(floor_to_int(u), 0), n_bins_[a] - 1);
        }
        atom_bin[i] = static_cast<size_t>((b[0] * n_bins_[1] + b[1]) * n_bins_[2] + b[2]);
        ++bin_start_[atom_bin[i] + 1];
    }
    for (size_t b = 0; b < n_bins; ++b) bin_start_[b + 1] += bin_start_[b];
    slots_.resize(n_atoms_);
    atom_slot_.resize(n_atoms_);
    std::vector<size_t> fill(bin_start_.begin(), bin_start_.end() - 1);
    for (size_t i = 0; i < n_atoms_; ++i) {
        const double* r = positions_ + 3 * i;
        const int32_t* w = &atom_wrap_[3 * i];
        atom_slot_[i] = fill[atom_bin[i]]++;
        Slot& s = slots_[atom_slot_[i]];
        double p[3];
        for (int d = 0; d < 3; ++d)
            p[d] = r[d] - (w[0] * cell_[d] + w[1] * cell_[3 + d] + w[2] * cell_[6 + d]);
        s = Slot{p[0], p[1], p[2], static_cast<int64_t>(i)};
    }
}

void CellList::refuse(SiteStatus status, int64_t atom, double value) {
    status_ = status;
    status_atom_ = atom;
    status_value_ = value;
}

std::string CellList::status_message() const {
    char text[200];
    switch (status_) {
        case SITE_TOO_MANY_IMAGES:
            std::snprintf(text, sizeof text,
                          "the periodic cell is too small or too skewed for the cutoff %g: a "
                          "search would cross %.3g periodic images (at most %.0f)",
                          cutoff_, status_value_, limits_.max_images);
            break;
        case SITE_TOO_FAR:
            if (status_atom_ < 0)
                std::snprintf(text, sizeof text,
                              "a lattice vector component of %.3g Å exceeds the largest length "
                              "accepted, %g Å",
                              status_value_, limits_.max_length);
            else
                std::snprintf(text, sizeof text,
                              "atom %lld lies too far from the origin (coordinate %.3g Å; at "
                              "most %g Å and %g cells)",
                              static_cast<long long>(status_atom_), status_value_,
                              limits_.max_length, kMaxCellsAway);
            break;
        default:
            return "";
    }
    return text;
}

bool CellList::neighbours(size_t centre, std::vector<Neighbour>& out) const {
    out.clear();
    const size_t limit = limits_.max_neighbours;
    for_each_neighbour(centre, [&](int64_t j, const int32_t* S, const double* D, double d) {
        out.push_back(Neighbour{j, {S[0], S[1], S[2]}, {D[0], D[1], D[2]}, d});
        return out.size() <= limit;
    });
    return out.size() <= limit;
}

template <class Visit>
void CellList::for_each_neighbour(size_t centre, Visit&& visit) const {
    if (brute_force_) {
        const double* ri = positions_ + 3 * centre;
        const int32_t zero[3] = {0, 0, 0};
        for (size_t j = 0; j < n_atoms_; ++j) {
            const double* rj = positions_ + 3 * j;
            const double v[3] = {rj[0] - ri[0], rj[1] - ri[1], rj[2] - ri[2]};
            const double d2 = (v[0] * v[0] + v[1] * v[1]) + v[2] * v[2];
            if (!(d2 < search2_) || j == centre) continue;
            const double d = std::sqrt(d2);
            if (d < cutoff_ && !visit(static_cast<int64_t>(j), zero, v, d)) return;
        }
        return;
    }
    for_each_segment(centre, [&](size_t begin, size_t end, const int64_t* t, const double* q) {
        const Slot* slots = slots_.data();
        for (size_t k = begin; k < end; ++k) {
            const Slot& s = slots[k];
            const double vx = s.x - q[0], vy = s.y - q[1], vz = s.z - q[2];
            const double d2 = (vx * vx + vy * vy) + vz * vz;
            if (!(d2 < search2_)) continue;
            const auto j = static_cast<size_t>(s.atom);
            int32_t S[3];
            double D[3], dist;
            exact(centre, j, t, S, D, dist);
            if (j == centre && S[0] == 0 && S[1] == 0 && S[2] == 0) continue;
            if ((d2 < inner2_ || dist < cutoff_) && !visit(s.atom, S, D, dist)) return false;
        }
        return true;
    });
}

size_t CellList::count_neighbours(size_t centre) const {
    const size_t limit = limits_.max_neighbours;
    if (brute_force_) {
        size_t count = 0;
        for_each_neighbour(centre, [&](int64_t, const int32_t*, const double*, double) {
            return ++count <= limit;
        });
        return count;
    }
    // the centre itself (at zero distance, scanned once) is counted if inner2_ > 0
    const size_t self = inner2_ > 0.0 ? 1 : 0;
    size_t count = 0;
    for_each_segment(centre, [&](size_t begin, size_t end, const int64_t* t, const double* q) {
        const Slot* slots = slots_.data();
        size_t band = 0;
        for (size_t k = begin; k < end; ++k) {
            const Slot& s = slots[k];
            const double vx = s.x - q[0], vy = s.y - q[1], vz = s.z - q[2];
            const double d2 = (vx * vx + vy * vy) + vz * vz;
            count += d2 < inner2_;
            band += (d2 >= inner2_) & (d2 < search2_);
        }
        if (band == 0) return count <= limit + self;
        for (size_t k = begin; k < end; ++k) {  // rare: pairs near the cutoff
            const Slot& s = slots[k];
            const double vx = s.x - q[0], vy = s.y - q[1], vz = s.z - q[2];
            const double d2 = (vx * vx + vy * vy) + vz * vz;
            if (d2 < inner2_ || !(d2 < search2_)) continue;
            const auto j = static_cast<size_t>(s.atom);
            int32_t S[3];
            double D[3], dist;
            exact(centre, j, t, S, D, dist);
            const bool is_self = j == centre && S[0] == 0 && S[1] == 0 && S[2] == 0;
            count += !is_self && dist < cutoff_;
        }
        return count <= limit + self;
    });
    return count > limit + self ? limit + 1 : count - self;
}

void CellList::exact(size_t centre, size_t j, const int64_t* t, int32_t* S, double* D,
                     double& distance) const {
    const int32_t* wi = &atom_wrap_[3 * centre];
    const int32_t* wj = &atom_wrap_[3 * j];
    for (int a = 0; a < 3; ++a) S[a] = static_cast<int32_t>(t[a] + wi[a] - wj[a]);
    const double* ri = positions_ + 3 * centre;
    const double* rj = positions_ + 3 * j;
    const double* c = cell_;
    for (int d = 0; d < 3; ++d)
        D[d] = (rj[d] - ri[d]) + ((S[0] * c[d] + S[1] * c[3 + d]) + S[2] * c[6 + d]);
    distance = std::sqrt((D[0] * D[0] + D[1] * D[1]) + D[2] * D[2]);
}

template <class Segment>
void CellList::for_each_segment(size_t centre, Segment&& segment) const {
    const double* ui = &atom_u_[3 * centre];
    const Slot& home = slots_[atom_slot_[centre]];
    const double* c = cell_;
    int64_t lo[3], hi[3];
    for (int a = 0; a < 3; ++a) {
        lo[a] = floor_to_int(ui[a] - reach_[a]);
        hi[a] = floor_to_int(ui[a] + reach_[a]);
        if (!pbc_[a]) {
            lo[a] = std::max<int64_t>(lo[a], 0);
            hi[a] = std::min<int64_t>(hi[a], n_bins_[a] - 1);
        }
    }
    const int64_t n0 = n_bins_[0], n1 = n_bins_[1], n2 = n_bins_[2];
    const size_t* starts = bin_start_.data();
    int64_t t[3];
    for (int64_t b0 = lo[0]; b0 <= hi[0]; ++b0) {
        t[0] = floor_div(b0, n0);
        const int64_t m0 = b0 - t[0] * n0;
        for (int64_t b1 = lo[1]; b1 <= hi[1]; ++b1) {
            t[1] = floor_div(b1, n1);
            const int64_t m1 = b1 - t[1] * n1;
            const int64_t row = (m0 * n1 + m1) * n2;
            // along the last axis, bins seen through one image are contiguous in slots_
            for (int64_t b2 = lo[2]; b2 <= hi[2];) {
                t[2] = floor_div(b2, n2);
                const int64_t m2 = b2 - t[2] * n2;
                const int64_t last = std::min(hi[2], (t[2] + 1) * n2 - 1);
                const size_t begin = starts[row + m2];
                const size_t end = starts[row + m2 + (last - b2) + 1];
                b2 = last + 1;
                if (begin == end) continue;
                const double q[3] = {home.x - (t[0] * c[0] + t[1] * c[3] + t[2] * c[6]),
                                     home.y - (t[0] * c[1] + t[1] * c[4] + t[2] * c[7]),
                                     home.z - (t[0] * c[2] + t[1] * c[5] + t[2] * c[8])};
                if (!segment(begin, end, t, q)) return;
            }
        }
    }
}

namespace {
// Structures with fewer centres than this are searched on one thread.
constexpr size_t kMinCentresPerThread = 256;
}  // namespace

NeighbourSearch::NeighbourSearch(const double* positions, size_t n_atoms, const double* cell,
                                 const bool* pbc, double cutoff, const SearchLimits& limits,
                                 const int64_t* centres, size_t n_centres, int n_threads)
    : cells_(positions, n_atoms, cell, pbc, cutoff, limits),
      centres_(centres),
      n_centres_(centres ? n_centres : n_atoms) {
    if (centres_)
        for (size_t c = 0; c < n_centres_; ++c)
            if (centres_[c] < 0 || static_cast<size_t>(centres_[c]) >= n_atoms)
                throw std::invalid_argument("centre index out of range");
    if (cells_.status() != SITE_OK) throw std::invalid_argument(cells_.status_message());
    threads_ = n_centres_ < 2 * kMinCentresPerThread
                   ? 1
                   : std::min<int>(resolve_threads(n_threads),
                                   static_cast<int>(n_centres_ / kMinCentresPerThread));
    offsets_.assign(n_centres_ + 1, 0);
    const long long n = static_cast<long long>(n_centres_);
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads_)
    for (long long c = 0; c < n; ++c) {
        offsets_[c + 1] = cells_.count_neighbours(centre(static_cast<size_t>(c)));
    }
    const size_t limit = cells_.max_neighbours();
    for (size_t c = 0; c < n_centres_; ++c) {
        if (offsets_[c + 1] > limit)
            throw std::invalid_argument("atom " + std::to_string(centre(c)) + " has more than " +
                                        std::to_string(limit) +
                                        " neighbours within the cutoff (denser than matter)");
        offsets_[c + 1] += offsets_[c];
    }
}

void NeighbourSearch::fill(int64_t* i, int64_t* j, double* distances, double* vectors,
                           int32_t* shifts) const {
    const long long n = static_cast<long long>(n_centres_);
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads_)
    for (long long c = 0; c < n; ++c) {
        const size_t ci = centre(static_cast<size_t>(c));
        size_t p = offsets_[c];
        cells_.for_each_neighbour(
            ci, [&](int64_t nj, const int32_t* S, const double* D, double d) {
                i[p] = static_cast<int64_t>(ci);
                j[p] = nj;
                distances[p] = d;
                for (int k = 0; k < 3; ++k) {
                    vectors[3 * p + k] = D[k];
                    shifts[3 * p + k] = S[k];
                }
                ++p;
                return true;
            });
    }
}

NeighbourList neighbour_list(const double* positions, size_t n_atoms, const double* cell,
                             const bool* pbc, double cutoff, const SearchLimits& limits,
                             const int64_t* centres, size_t n_centres, int n_threads) {
    const NeighbourSearch search(positions, n_atoms, cell, pbc, cutoff, limits, centres,
                                 n_centres, n_threads);
    const size_t n = search.n_pairs();
    NeighbourList result;
    result.i.resize(n);
    result.j.resize(n);
    result.distances.resize(n);
    result.vectors.resize(3 * n);
    result.shifts.resize(3 * n);
    search.fill(result.i.data(), result.j.data(), result.distances.data(),
                result.vectors.data(), result.shifts.data());
    return result;
}

}  // namespace xanesnet
