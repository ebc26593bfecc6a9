// Placeholder brute-force neighbour search over periodic images (to be replaced by cell lists).
#include "neighbours.hpp"

#include <cmath>
#include <stdexcept>

#include "threading.hpp"

namespace xanesnet {

namespace {
double det3(const double* m) {
    return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
           m[2] * (m[3] * m[7] - m[4] * m[6]);
}
void cross(const double* a, const double* b, double* c) {
    c[0] = a[1] * b[2] - a[2] * b[1];
    c[1] = a[2] * b[0] - a[0] * b[2];
    c[2] = a[0] * b[1] - a[1] * b[0];
}
}  // namespace

CellList::CellList(const double* positions, size_t n_atoms, const double* cell, const bool* pbc,
                   double cutoff)
    : positions_(positions), n_atoms_(n_atoms), cutoff_(cutoff) {
    if (!(cutoff > 0.0)) throw std::invalid_argument("cutoff must be positive");
    for (int k = 0; k < 9; ++k) cell_[k] = cell[k];
    for (int a = 0; a < 3; ++a) {
        pbc_[a] = pbc[a];
        max_shift_[a] = 0;
    }
    bool any = pbc[0] || pbc[1] || pbc[2];
    if (!any) return;
    double volume = std::fabs(det3(cell_));
    if (!(volume > 1e-12)) throw std::invalid_argument("periodic cell is singular");
    for (int a = 0; a < 3; ++a) {
        if (!pbc_[a]) continue;
        double n[3];
        cross(cell_ + 3 * ((a + 1) % 3), cell_ + 3 * ((a + 2) % 3), n);
        double area = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        double height = volume / area;
        // positions may lie outside the cell: one extra image covers any wrapped offset
        max_shift_[a] = static_cast<int32_t>(std::ceil(cutoff / height)) + 1;
    }
}

void CellList::neighbours(size_t centre, std::vector<Neighbour>& out) const {
    out.clear();
    const double* ri = positions_ + 3 * centre;
    const double c2 = cutoff_ * cutoff_;
    for (int32_t s0 = -max_shift_[0]; s0 <= max_shift_[0]; ++s0)
        for (int32_t s1 = -max_shift_[1]; s1 <= max_shift_[1]; ++s1)
            for (int32_t s2 = -max_shift_[2]; s2 <= max_shift_[2]; ++s2) {
                double off[3];
                for (int d = 0; d < 3; ++d)
                    off[d] = s0 * cell_[d] + s1 * cell_[3 + d] + s2 * cell_[6 + d];
                bool zero_shift = (s0 == 0 && s1 == 0 && s2 == 0);
                for (size_t j = 0; j < n_atoms_; ++j) {
                    if (zero_shift && j == centre) continue;
                    const double* rj = positions_ + 3 * j;
                    double v[3] = {rj[0] + off[0] - ri[0], rj[1] + off[1] - ri[1],
                                   rj[2] + off[2] - ri[2]};
                    double d2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
                    if (d2 < c2) {
                        double d = std::sqrt(d2);
                        if (!(d < cutoff_)) continue;
                        out.push_back(
                            Neighbour{static_cast<int64_t>(j), {s0, s1, s2}, {v[0], v[1], v[2]}, d});
                    }
                }
            }
}

NeighbourList neighbour_list(const double* positions, size_t n_atoms, const double* cell,
                             const bool* pbc, double cutoff, const int64_t* centres,
                             size_t n_centres, int n_threads) {
    (void)n_threads;
    CellList cells(positions, n_atoms, cell, pbc, cutoff);
    NeighbourList result;
    std::vector<Neighbour> found;
    size_t n = centres ? n_centres : n_atoms;
    for (size_t c = 0; c < n; ++c) {
        size_t i = centres ? static_cast<size_t>(centres[c]) : c;
        cells.neighbours(i, found);
        for (const auto& nb : found) {
            result.i.push_back(static_cast<int64_t>(i));
            result.j.push_back(nb.j);
            for (int d = 0; d < 3; ++d) {
                result.shifts.push_back(nb.shift[d]);
                result.vectors.push_back(nb.vector[d]);
            }
            result.distances.push_back(nb.distance);
        }
    }
    return result;
}

}  // namespace xanesnet
