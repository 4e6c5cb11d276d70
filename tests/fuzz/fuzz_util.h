/* fuzz_util.h — shared helpers of the libFuzzer targets (make fuzz): a private temporary directory per process
 * and whole-file writes, for the loaders that read files by path.  Golden inputs are found under
 * LOCUS_GOLDEN (default tests/golden, i.e. run from the repository root as `make fuzz` does). */
#ifndef LOCUS_FUZZ_UTIL_H
#define LOCUS_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *fz_dir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/locus_fuzz.XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* fz_dir()/name, written with the bytes given */
static const char *fz_write(const char *name, const void *data, size_t size) {
    static char path[4][512];
    static int k;
    char *p = path[k++ & 3];
    snprintf(p, 512, "%s/%s", fz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return p;
}

static const char *fz_golden(const char *rel) {
    static char path[4][1024];
    static int k;
    char *p = path[k++ & 3];
    const char *g = getenv("LOCUS_GOLDEN");
    snprintf(p, 1024, "%s/%s", g ? g : "tests/golden", rel);
    return p;
}

/* a NUL-terminated copy (ASan sees reads past the input's end) */
static char *fz_str(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

#endif
