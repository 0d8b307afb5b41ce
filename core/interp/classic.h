/* classic.h — tree ensembles (tree.c) and generalized linear models (glm.c) as kernels. Both
 * read one feature vector per run: the model's inputs concatenated in description order (a
 * double or int64 input is one value, a multiarray all of its values), as Core ML does. They
 * output scores after the model's post-evaluation transform; classic.c adds the classifier's
 * label/probability op (nn_classify.c) and builds the program. Values are computed in double;
 * inputs arrive as the interpreter's tensors (fp64 values are held as fp32). */
#ifndef MLSH_IT_CLASSIC_H
#define MLSH_IT_CLASSIC_H
#include "nn_build.h"

/* Compile a TreeEnsembleParameters (+ transform) for the tree kernel: NULL + error when malformed. */
const void *it_tree_compile(nn_b *B, const CoreML__Specification__TreeEnsembleParameters *t, int transform, size_t *dims);
/* Compile a GLM (regressor: classes = 0). */
const void *it_glm_compile(nn_b *B, const ProtobufCMessage *glm, int classifier, size_t nclasses, size_t *dims);
extern const it_kernel_def it_k_tree, it_k_glm;
/* The feature vector of a classic model's op: every binding of parameter "x" concatenated. */
double *it_features(it_ctx *c, size_t *n);
#endif
