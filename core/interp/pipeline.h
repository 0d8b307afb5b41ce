/* pipeline.h — models lowered into one program under construction, so a pipeline (pipeline,
 * pipelineClassifier, pipelineRegressor) runs its sub-models in order as one program of kernels.
 * Each front end lowers a model into B; with sub = 0 the model's description inputs become the
 * program's inputs, with sub = 1 they must already be values of B (the pipeline's inputs or an
 * earlier sub-model's outputs, looked up by name). Each defines its description outputs (by name)
 * and fails with the error set. pipeline.c hides a sub-model's internal names from the models
 * after it (renamed "<sub-model name>/<name>"), so only the declared outputs flow on. */
#ifndef MLSH_IT_PIPELINE_H
#define MLSH_IT_PIPELINE_H
#include "nn_build.h"

typedef CoreML__Specification__Model it_model;

int it_nn_lower_model(nn_b *B, const it_model *m, int sub);      /* nn_program.c */
int it_classic_lower_model(nn_b *B, const it_model *m, int sub); /* classic.c */
/* Feature engineering (feature.c): scaler, imputer, normalizer, featureVectorizer,
 * oneHotEncoder, arrayFeatureExtractor; always sub-models (their inputs are existing values).
 * Returns 1 when the model is not a feature-engineering type (nothing done, no error). */
int it_feature_lower_model(nn_b *B, const it_model *m);
/* The slot of a sub-model input (an existing value) or -1 + an error naming the input. */
int it_sub_input(nn_b *B, const char *name);
/* A new program input from a feature description (double -> fp64 [1], int64 -> int64 [1],
 * multiarray -> its dtype and shape, -1 for flexible dims; image -> fp32 [1, C, H, W]).
 * Strings, dictionaries and sequences fail ("... is not supported by the interpreter"). */
int it_feature_input(nn_b *B, const CoreML__Specification__FeatureDescription *f);
/* The dtype a feature description declares (double -> fp64, int64 -> int64, arrays their type). */
mlsh_dtype it_feature_dtype(const CoreML__Specification__FeatureDescription *f);
/* An ML program sub-model (pipeline_prog.c): loaded with it_program_load through the pipeline's
 * container c (its blobs live in the package's weight file; c = NULL refuses it) and run as one
 * op whose nested block is the sub-program's main block. */
int it_pipeline_program(nn_b *B, const it_model *m, mlsh_container *c);
#endif
