// Neighbour search within a cutoff, for molecules and (partially) periodic triclinic cells.
// Plain C++17; no Python headers. Matches ase.neighborlist.neighbor_list: the same pairs
// (i, j, shift S), distances and vectors D = r_j + S·cell − r_i, with 0 < d < cutoff.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace xanesnet {

/// One neighbour of a centre atom: atom j seen through the periodic image `shift`.
struct Neighbour {
    int64_t j;
    int32_t shift[3];
    double vector[3];  // r_j + shift·cell − r_i, Å
    double distance;   // |vector|, Å
};

/// Spatial index over one structure, built once, queried per centre (thread-safe queries).
class CellList {
public:
    /// positions: (n_atoms, 3) row-major, Å. cell: (3, 3) row-major, rows are lattice vectors
    /// (rows of non-periodic axes may be zero). pbc: periodicity per axis. cutoff > 0, Å.
    /// Throws std::invalid_argument for a cutoff <= 0 or singular periodic lattice vectors.
    CellList(const double* positions, size_t n_atoms, const double* cell, const bool* pbc,
             double cutoff);

    /// Clears `out` and appends every neighbour of atom `centre` (0 < d < cutoff).
    void neighbours(size_t centre, std::vector<Neighbour>& out) const;

    size_t n_atoms() const { return n_atoms_; }
    double cutoff() const { return cutoff_; }

private:
    const double* positions_;
    size_t n_atoms_;
    double cell_[9];
    bool pbc_[3];
    double cutoff_;
    int32_t max_shift_[3];  // image range searched on each axis
};

/// A full neighbour list in flat arrays (ase's "ijdDS").
struct NeighbourList {
    std::vector<int64_t> i, j;
    std::vector<int32_t> shifts;   // (n_pairs, 3)
    std::vector<double> distances; // (n_pairs,)
    std::vector<double> vectors;   // (n_pairs, 3)
};

/// Neighbours of `centres` (all atoms when centres == nullptr), sorted by centre in the
/// order given. n_threads: 0 = all available.
NeighbourList neighbour_list(const double* positions, size_t n_atoms, const double* cell,
                             const bool* pbc, double cutoff, const int64_t* centres,
                             size_t n_centres, int n_threads);

}  // namespace xanesnet
