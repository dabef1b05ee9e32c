/* A small C driver for the shim: builds tensors, runs ops, checks errors and prints the versions. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ctorch.h"

static int failures = 0;
#define CHECK(condition, what)                              \
  do {                                                      \
    if (!(condition)) {                                     \
      fprintf(stderr, "ctorch_smoke: FAILED %s\n", what);   \
      failures++;                                           \
    }                                                       \
  } while (0)

static int count_pieces = 0;
static void collect(void *context, ctorch_tensor t) {
  (void)context;
  count_pieces++;
  ctorch_tensor_free(t);
}

int main(void) {
  CHECK(ctorch_abi_version() == CTORCH_ABI_VERSION, "ABI version matches the header");

  float values[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[2] = {2, 3};
  ctorch_tensor a = NULL, b = NULL, sum = NULL, reduced = NULL;
  CHECK(ctorch_from_data(values, shape, 2, CTORCH_FLOAT32, &a) == CTORCH_OK, "from_data");
  CHECK(ctorch_binary(CTORCH_MUL, a, a, &b) == CTORCH_OK, "mul");
  CHECK(ctorch_binary(CTORCH_ADD, a, b, &sum) == CTORCH_OK, "add");
  CHECK(ctorch_reduce(CTORCH_SUM, sum, NULL, 0, false, &reduced) == CTORCH_OK, "sum");
  ctorch_scalar total = {0};
  CHECK(ctorch_item(reduced, &total) == CTORCH_OK && fabs(total.real - 112.0) < 1e-6, "sum of x + x*x is 112");

  int64_t bad_shape[1] = {4};
  ctorch_tensor c = NULL, d = NULL;
  CHECK(ctorch_from_data(values, bad_shape, 1, CTORCH_FLOAT32, &c) == CTORCH_OK, "from_data 1-d");
  CHECK(ctorch_binary(CTORCH_ADD, a, c, &d) == CTORCH_ERROR && d == NULL, "mismatched shapes fail");
  CHECK(strstr(ctorch_last_error(), "size of tensor") != NULL, "the error message is kept");
  CHECK(ctorch_unary(CTORCH_EXP, NULL, &d) == CTORCH_ERROR, "a NULL tensor is an error, not a crash");

  CHECK(ctorch_chunk(a, 3, 1, collect, NULL) == CTORCH_OK && count_pieces == 3, "chunk into 3 through the sink");

  ctorch_tensor_free(a);
  ctorch_tensor_free(b);
  ctorch_tensor_free(sum);
  ctorch_tensor_free(reduced);
  ctorch_tensor_free(c);

  printf("libtorch %s, CUDA %s, %d threads\n", ctorch_libtorch_version(), ctorch_cuda_is_available() ? "available" : "not available",
         ctorch_get_num_threads());
  if (failures) return 1;
  return 0;
}
