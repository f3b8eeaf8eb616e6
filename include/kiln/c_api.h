/* Kiln's C API: load a model and run a signature, for callers that cannot use the C++ API
 * (other languages; TensorFlow's op library, which loads libkiln.so with its own symbol scope so
 * that Kiln's protobuf never meets TensorFlow's).
 *
 *   KilnModel* model = kiln_model_load("/models/resnet50_kiln", NULL);
 *   if (!model) fprintf(stderr, "%s\n", kiln_last_error());
 *   KilnInput in = {"input_1", KILN_DT_FLOAT, 4, dims, data};
 *   KilnOutputs* out = NULL;
 *   if (kiln_run(model, "serving_default", &in, 1, &out) != 0) ...;
 *   for (int i = 0; i < kiln_outputs_count(out); ++i) ... kiln_output_data(out, i) ...;
 *   kiln_outputs_free(out);
 *   kiln_model_free(model);
 *
 * Functions returning int return 0 on success and an error code (1 + kiln::ErrorCode) on failure;
 * functions returning pointers return NULL on failure. kiln_last_error() is the message of the
 * calling thread's last failure. Host memory only; dtypes are TensorFlow's DataType numbers
 * (KILN_DT_FLOAT = 1, ...; DT_STRING is not supported). kiln_run is thread-safe.
 */
#ifndef KILN_C_API_H_
#define KILN_C_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct KilnModel KilnModel;
typedef struct KilnOutputs KilnOutputs;

enum { KILN_DT_FLOAT = 1, KILN_DT_INT32 = 3, KILN_DT_INT64 = 9, KILN_DT_BOOL = 10 };

typedef struct KilnInput {
  const char* name;
  int dtype; /* TensorFlow DataType number */
  int rank;
  const int64_t* dims; /* rank entries */
  const void* data;    /* C order; read in place, never written; valid until kiln_run returns */
} KilnInput;

/* The message of this thread's last failure ("" when none). */
const char* kiln_last_error(void);
/* Kiln's version ("0.1.0"). */
const char* kiln_version(void);

/* Loads a SavedModel, ONNX file, converted model or .kiln file. `tags`: comma-separated, NULL for "serve". */
KilnModel* kiln_model_load(const char* path, const char* tags);
void kiln_model_free(KilnModel* model);

/* Runs signature `key` (NULL: serving_default) on `inputs`; on success *outputs holds every output. */
int kiln_run(const KilnModel* model, const char* key, const KilnInput* inputs, int num_inputs, KilnOutputs** outputs);

/* Runs engine node `engine` of signature `key` of a converted model alone (TensorFlow's
 * KilnEngineOp): `inputs` are its segment's inputs in order (names are ignored and may be NULL),
 * `*outputs` its outputs in order, named "0", "1", ... The engine cache, building for new shapes
 * and the native fallback work as in kiln_run; a GPU model's outputs come back in host memory. */
int kiln_run_engine(const KilnModel* model, const char* key, const char* engine, const KilnInput* inputs,
                    int num_inputs, KilnOutputs** outputs);

int kiln_outputs_count(const KilnOutputs* outputs);
/* The index of the output named `name`, or -1. */
int kiln_outputs_find(const KilnOutputs* outputs, const char* name);
const char* kiln_output_name(const KilnOutputs* outputs, int i);
int kiln_output_dtype(const KilnOutputs* outputs, int i);
int kiln_output_rank(const KilnOutputs* outputs, int i);
const int64_t* kiln_output_dims(const KilnOutputs* outputs, int i);
const void* kiln_output_data(const KilnOutputs* outputs, int i);
size_t kiln_output_bytes(const KilnOutputs* outputs, int i);
void kiln_outputs_free(KilnOutputs* outputs);

#ifdef __cplusplus
}
#endif

#endif /* KILN_C_API_H_ */
