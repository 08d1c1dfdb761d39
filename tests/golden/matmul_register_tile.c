#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <math.h>

static inline int32_t tw_min_int32(int32_t a, int32_t b) { return a < b ? a : b; }

void mm(float* restrict A, float* restrict B, float* restrict C) {
  #pragma omp parallel for num_threads(2) schedule(static)
  for (int32_t i_outer = 0; i_outer < 8; ++i_outer) {
    for (int32_t j_outer = 0; j_outer < 3; ++j_outer) {
      {
        float C_local_stack[128] __attribute__((aligned(64)));
        float* restrict C_local = C_local_stack;
        #pragma GCC unroll 8
        for (int32_t i_c = 0; i_c < 8; ++i_c) {
          #pragma omp simd
          for (int32_t j_c = 0; j_c < 16; ++j_c) {
            C_local[((i_c * 16) + j_c)] = 0.0f;
          }
        }
        for (int32_t k_c_outer = 0; k_c_outer < 5; ++k_c_outer) {
          #pragma GCC unroll 8
          for (int32_t i_c = 0; i_c < 8; ++i_c) {
            const int32_t k_c_inner_hi = tw_min_int32(7, (30 - (k_c_outer * 7)));
            for (int32_t k_c_inner = 0; k_c_inner < k_c_inner_hi; ++k_c_inner) {
              #pragma omp simd
              for (int32_t j_c = 0; j_c < 16; ++j_c) {
                C_local[((i_c * 16) + j_c)] = (C_local[((i_c * 16) + j_c)] + (A[((((i_c * 30) + (i_outer * 240)) + (k_c_outer * 7)) + k_c_inner)] * B[((((k_c_outer * 336) + (k_c_inner * 48)) + j_c) + (j_outer * 16))]));
              }
            }
            for (int32_t k_c_inner = 0; k_c_inner < (7 - k_c_inner_hi); ++k_c_inner) {
              if (((((k_c_outer * 7) + k_c_inner) + k_c_inner_hi) < 30)) {
                #pragma omp simd
                for (int32_t j_c = 0; j_c < 16; ++j_c) {
                  C_local[((i_c * 16) + j_c)] = (C_local[((i_c * 16) + j_c)] + (A[(((((i_c * 30) + (i_outer * 240)) + (k_c_outer * 7)) + k_c_inner) + k_c_inner_hi)] * B[(((((k_c_outer * 336) + (k_c_inner * 48)) + (k_c_inner_hi * 48)) + j_c) + (j_outer * 16))]));
                }
              }
            }
          }
        }
        for (int32_t i_inner = 0; i_inner < 8; ++i_inner) {
          for (int32_t j_inner = 0; j_inner < 16; ++j_inner) {
            C[((((i_outer * 384) + (i_inner * 48)) + (j_outer * 16)) + j_inner)] = C_local[((i_inner * 16) + j_inner)];
          }
        }
      }
    }
  }
}

void mm_packed(void** args) {
  mm((float*)args[0], (float*)args[1], (float*)args[2]);
}
