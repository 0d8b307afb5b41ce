/* kmeans1d.h — optimal weighted k-means in one dimension.
 * Contract: given n ascending distinct values x[i] with positive weights w[i], split them into
 * m = min(k, n) contiguous clusters minimising sum w[i]*(x[i] - centroid)^2 (the same problem
 * coremltools hands to the kmeans1d package for fp16 weights). Solved exactly by dynamic
 * programming over the sorted values, each layer's row minima by divide and conquer (the cost
 * matrix is Monge): O(k*n*log n) time, O(k*n) memory for the back-pointers; k <= 256. A
 * workspace is reused across calls and grows as needed; one per thread. When n*k exceeds MLSH_KM1D_MAX_CELLS (never for fp16 data: 65,536 x 256 fits) the
 * values are first merged into MLSH_KM1D_MAX_CELLS/k equal runs, solved exactly on those, then
 * refined by Lloyd steps on the full data; *exact is set to 0 then. */
#ifndef MLSH_COMPRESS_KMEANS1D_H
#define MLSH_COMPRESS_KMEANS1D_H
#include <stddef.h>
#include <stdint.h>

#define MLSH_KM1D_MAX_CELLS ((size_t)1 << 25)

typedef struct mlsh_km1d mlsh_km1d;

mlsh_km1d *mlsh_km1d_new(void);
void mlsh_km1d_free(mlsh_km1d *ws);

/* Cluster x[0..n) (ascending, distinct, finite) with weights w (> 0) into at most k clusters.
 * Writes end[c] = one past the last index of cluster c and centroid[c] = its weighted mean,
 * for c < m (arrays of k entries); *sse = the total weighted squared error; *exact as above.
 * Returns m (>= 1), or a negative mlsh_cz_status. */
int mlsh_km1d_cluster(mlsh_km1d *ws, const float *x, const uint64_t *w, size_t n, unsigned k,
                      size_t *end, double *centroid, double *sse, int *exact);
#endif
