/* A STREAM-like memory bandwidth test (after McCalpin's STREAM): copy a[i] = b[i] and
 * triad a[i] = b[i] + s * c[i] over f64 arrays far larger than the caches, with OpenMP
 * threads, best of NTIMES passes. Bytes counted as STREAM does: copy 16 B per element
 * (one read, one write), triad 24 B (two reads, one write); write-allocate traffic is
 * not counted.
 *
 *   gcc -O3 -march=native -fopenmp benches/stream.c -o target/stream
 *   OMP_NUM_THREADS=2 target/stream [MiB per array, default 512] [passes, default 10]
 *
 * Prints one line per kernel: "copy: best GB/s median GB/s" (GB = 1e9 bytes); run by
 * benches/roofline.py. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now(void) { return omp_get_wtime(); }

static int cmp(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 512;
    int passes = argc > 2 ? atoi(argv[2]) : 10;
    if (mib == 0 || passes < 1 || passes > 1000) {
        fprintf(stderr, "usage: stream [MiB per array] [passes]\n");
        return 2;
    }
    size_t n = mib * 1024 * 1024 / sizeof(double);
    double *a = aligned_alloc(64, n * sizeof(double));
    double *b = aligned_alloc(64, n * sizeof(double));
    double *c = aligned_alloc(64, n * sizeof(double));
    if (!a || !b || !c) {
        fprintf(stderr, "stream: cannot allocate 3 x %zu MiB\n", mib);
        return 1;
    }
    /* First touch in parallel, so pages land where the threads run. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        a[i] = 1.0;
        b[i] = 2.0;
        c[i] = 0.5;
    }
    double *copy = malloc(passes * sizeof(double)), *triad = malloc(passes * sizeof(double));
    const double s = 3.0;
    for (int p = 0; p < passes; p++) {
        double t = now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i];
        copy[p] = 16.0 * n / (now() - t) / 1e9;
        t = now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        triad[p] = 24.0 * n / (now() - t) / 1e9;
    }
    /* Keep the stores alive. */
    double check = 0;
    for (size_t i = 0; i < n; i += 4096) check += a[i];
    qsort(copy, passes, sizeof(double), cmp);
    qsort(triad, passes, sizeof(double), cmp);
    printf("threads: %d, arrays: 3 x %zu MiB, passes: %d (check %.1f)\n", omp_get_max_threads(),
           mib, passes, check);
    printf("copy: %.2f %.2f\n", copy[passes - 1], copy[passes / 2]);
    printf("triad: %.2f %.2f\n", triad[passes - 1], triad[passes / 2]);
    free(a);
    free(b);
    free(c);
    free(copy);
    free(triad);
    return 0;
}
