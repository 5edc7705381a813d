/*
 * The C counterpart of `seam run BUNDLE --tokens 1,2,3,4,5,6,7,8`: loads a
 * bundle through the C ABI (capi/include/seam.h), runs its `forward` entry
 * point on token ids and prints each output's checksum line as `seam run`
 * prints it:
 *
 *   output 0: f32[8, 64] checksum sum=... mean_abs=... min=... max=...
 *
 * (`seam run` also names the output: `output 0 %logits: ...`.)
 *
 * Build (see the Makefile beside this file):
 *   cargo build -p seam-capi
 *   cc examples/c/demo.c -I capi/include -L target/debug -lseam_capi \
 *      -Wl,-rpath,"$PWD/target/debug" -o demo
 *   ./demo out/readme_moe.seamb            # ids 1..8
 *   ./demo out/readme_moe.seamb 5 6 7      # other ids
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seam.h"

/* Prints `what` failed and the library's message; returns 1 for main. */
static int fail(const char *what, SeamStatus status) {
    fprintf(stderr, "error: %s: %s: %s\n", what, seam_status_name(status), seam_last_error());
    return 1;
}

/* An IEEE 754 binary16 bit pattern as a float. */
static float half_to_float(uint16_t h) {
    int exponent = (h >> 10) & 0x1f;
    float mantissa = (float)(h & 0x3ff);
    float value;
    if (exponent == 0) {
        value = ldexpf(mantissa, -24);
    } else if (exponent == 31) {
        value = (h & 0x3ff) ? NAN : INFINITY;
    } else {
        value = ldexpf(mantissa + 1024.0f, exponent - 25);
    }
    return (h & 0x8000) ? -value : value;
}

/* Element `i` of `t` as a float (integers converted, f16 widened). */
static float element(const SeamTensor *t, size_t i) {
    switch (t->dtype) {
    case SEAM_DTYPE_F32: return ((const float *)t->data)[i];
    case SEAM_DTYPE_F16: return half_to_float(((const uint16_t *)t->data)[i]);
    case SEAM_DTYPE_I32: return (float)((const int32_t *)t->data)[i];
    default: return (float)((const uint32_t *)t->data)[i];
    }
}

/* Writes `x` as Rust's `{:.6e}` does (`1.234568e2`, `-5.000000e-1`, `NaN`, `inf`). */
static void rust_exp(char *out, size_t size, double x) {
    if (isnan(x)) {
        snprintf(out, size, "NaN");
    } else if (isinf(x)) {
        snprintf(out, size, x < 0 ? "-inf" : "inf");
    } else {
        char c[32];
        snprintf(c, sizeof c, "%.6e", x); /* 1.234568e+02 */
        char *e = strchr(c, 'e');
        *e = '\0';
        snprintf(out, size, "%se%d", c, atoi(e + 1));
    }
}

/* Prints `output I: DTYPE[SHAPE] checksum ...` as `seam run` does. */
static void print_checksum(size_t index, const SeamTensor *t) {
    static const char *names[] = {"f32", "f16", "i32", "u32"};
    size_t n = 1;
    printf("output %zu: %s[", index, t->dtype < 4 ? names[t->dtype] : "?");
    for (size_t d = 0; d < t->rank; d++) {
        printf(d ? ", %zu" : "%zu", t->shape[d]);
        n *= t->shape[d];
    }
    double sum = 0.0, sum_abs = 0.0;
    float min = INFINITY, max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        float v = element(t, i);
        sum += (double)v;
        sum_abs += fabs((double)v);
        min = fminf(min, v);
        max = fmaxf(max, v);
    }
    char s[4][64];
    rust_exp(s[0], sizeof s[0], sum);
    rust_exp(s[1], sizeof s[1], sum_abs / (double)(n ? n : 1));
    rust_exp(s[2], sizeof s[2], (double)min);
    rust_exp(s[3], sizeof s[3], (double)max);
    printf("] checksum sum=%s mean_abs=%s min=%s max=%s\n", s[0], s[1], s[2], s[3]);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BUNDLE [TOKEN_ID...]   (default ids: 1 2 3 4 5 6 7 8)\n", argv[0]);
        return 2;
    }
    size_t n_ids = argc > 2 ? (size_t)(argc - 2) : 8;
    int32_t *ids = malloc(n_ids * sizeof *ids);
    if (!ids) return 1;
    for (size_t i = 0; i < n_ids; i++) {
        ids[i] = argc > 2 ? (int32_t)atoi(argv[i + 2]) : (int32_t)(i + 1);
    }

    SeamRuntime *runtime = NULL;
    SeamModel *model = NULL;
    SeamSession *session = NULL;
    SeamTensor *outputs = NULL;
    size_t n_outputs = 0;
    SeamStatus status;
    int rc = 1;

    if ((status = seam_runtime_new(&runtime)) != SEAM_OK) {
        rc = fail("opening a device", status);
        goto done;
    }
    printf("device: %s\n", seam_runtime_adapter_name(runtime));
    if ((status = seam_model_load_file(runtime, argv[1], &model)) != SEAM_OK) {
        rc = fail("loading the bundle", status);
        goto done;
    }
    if ((status = seam_session_new(model, &session)) != SEAM_OK ||
        (status = seam_session_warm_up(session)) != SEAM_OK) {
        rc = fail("creating a session", status);
        goto done;
    }
    SeamTensor input = {SEAM_DTYPE_I32, 1, {n_ids}, ids, n_ids * sizeof *ids};
    if ((status = seam_session_run(session, "forward", &input, 1, &outputs, &n_outputs)) != SEAM_OK) {
        rc = fail("running `forward`", status);
        goto done;
    }
    for (size_t i = 0; i < n_outputs; i++) {
        print_checksum(i, &outputs[i]);
    }
    rc = 0;

done:
    seam_tensors_free(outputs, n_outputs);
    seam_session_free(session);
    seam_model_free(model);
    seam_runtime_free(runtime);
    free(ids);
    return rc;
}
