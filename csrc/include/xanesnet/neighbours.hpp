// Neighbour search within a cutoff, for molecules and (partially) periodic triclinic cells.
// Plain C++17; no Python headers. Matches ase.neighborlist.neighbor_list: the same pairs
// (i, j, shift S), distances and vectors D = r_j + S·cell − r_i, with d < cutoff (strict), the
// centre itself at zero shift excluded (its periodic images are included). Shifts refer to the
// positions as given (they need not lie inside the cell) and are zero along non-periodic axes.
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
    /// Throws std::invalid_argument for a cutoff <= 0 or non-finite, singular periodic lattice
    /// vectors, or non-finite positions or periodic lattice vectors. `positions` must outlive
    /// the CellList (it is not copied).
    CellList(const double* positions, size_t n_atoms, const double* cell, const bool* pbc,
             double cutoff);

    /// Clears `out` and appends every neighbour of atom `centre` (d < cutoff).
    void neighbours(size_t centre, std::vector<Neighbour>& out) const;

    size_t n_atoms() const { return n_atoms_; }
    double cutoff() const { return cutoff_; }

private:
    friend class NeighbourSearch;

    /// One binned atom: its position wrapped into the home cell (periodic axes), and index.
    struct Slot {
        double x, y, z;
        int64_t atom;
    };

    /// Calls visit(j, shift, vector, distance) for every neighbour of `centre`, always in the
    /// same order. Defined (and only instantiated) in neighbours.cpp.
    template <class Visit>
    void for_each_neighbour(size_t centre, Visit&& visit) const;
    /// Number of neighbours of `centre` (what for_each_neighbour visits), found faster.
    size_t count_neighbours(size_t centre) const;
    /// Calls segment(begin, end, t, q) for each run [begin, end) of slots_ to scan, seen through
    /// the periodic image t, where q is the centre's wrapped position minus t·cell.
    template <class Segment>
    void for_each_segment(size_t centre, Segment&& segment) const;
    /// Shift S = t + w_centre − w_j and vector D = r_j + S·cell − r_centre from the caller's
    /// positions, and |D|.
    void exact(size_t centre, size_t j, const int64_t* t, int32_t* S, double* D,
               double& distance) const;

    const double* positions_;  // caller's array, not copied
    size_t n_atoms_;
    double cell_[9];
    bool pbc_[3];
    double cutoff_;
    bool brute_force_ = false;  // small molecule: scan every atom, nothing binned
    // Squared distances on wrapped positions: below inner2_ a pair is certainly within the
    // cutoff, at or above search2_ certainly not; in between the exact test decides.
    double search2_ = 0.0;
    double inner2_ = 0.0;

    // Bin coordinate of a point on axis a: u_a = (f_a − origin_a) · scale_a, where f are its
    // coordinates in a basis B (the cell, with non-periodic rows replaced by unit vectors
    // orthogonal to the periodic ones), wrapped into [0, 1) on periodic axes.
    double inverse_[9];      // B^{-1}: f = r · B^{-1}
    double origin_[3];       // bounding-box minimum on non-periodic axes, 0 on periodic ones
    double scale_[3];        // bins per unit of f
    double reach_[3];        // search radius in bin units
    int64_t n_bins_[3];
    std::vector<size_t> bin_start_;  // (n_bins + 1,) offsets into slots_
    std::vector<Slot> slots_;        // atoms sorted by bin
    std::vector<double> atom_u_;     // (n_atoms, 3) bin coordinates
    std::vector<int32_t> atom_wrap_; // (n_atoms, 3) image of the wrapped position: r = r' + w·cell
    std::vector<size_t> atom_slot_;  // (n_atoms,) where each atom is in slots_
};

/// A full neighbour list in flat arrays (ase's "ijdDS").
struct NeighbourList {
    std::vector<int64_t> i, j;
    std::vector<int32_t> shifts;   // (n_pairs, 3)
    std::vector<double> distances; // (n_pairs,)
    std::vector<double> vectors;   // (n_pairs, 3)
};

/// Full neighbour list in two passes without intermediate buffers: the constructor builds the
/// cell list and counts the neighbours of every centre, fill() writes them straight into
/// caller-owned arrays (the Python binding fills NumPy arrays this way). Both passes use
/// `n_threads` threads (0 = all available); pairs come grouped by centre in the order given.
class NeighbourSearch {
public:
    /// Arguments as for neighbour_list(); `positions` and `centres` must outlive the object.
    /// Throws std::invalid_argument as CellList does, or for a centre index out of range.
    NeighbourSearch(const double* positions, size_t n_atoms, const double* cell, const bool* pbc,
                    double cutoff, const int64_t* centres, size_t n_centres, int n_threads);

    size_t n_pairs() const { return offsets_.back(); }

    /// Writes every pair: i, j, distances (n_pairs,); vectors, shifts (n_pairs, 3) row-major.
    void fill(int64_t* i, int64_t* j, double* distances, double* vectors,
              int32_t* shifts) const;

private:
    size_t centre(size_t c) const { return centres_ ? static_cast<size_t>(centres_[c]) : c; }

    CellList cells_;
    const int64_t* centres_;
    size_t n_centres_;
    int threads_;
    std::vector<size_t> offsets_;  // (n_centres + 1,) first pair of each centre
};

/// Neighbours of `centres` (all atoms when centres == nullptr), sorted by centre in the
/// order given. n_threads: 0 = all available.
NeighbourList neighbour_list(const double* positions, size_t n_atoms, const double* cell,
                             const bool* pbc, double cutoff, const int64_t* centres,
                             size_t n_centres, int n_threads);

}  // namespace xanesnet
