/* nn_lower_rnn.c — recurrent layers (filled in below). */
#include "nn_lower.h"
const nn_lowering nn_lower_rnn[] = {{0, NULL}};
