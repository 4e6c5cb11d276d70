/* fileio.c — atomic and durable file writes (see fileio.h). */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

locus_status locus_write_atomic(const char *path, const void *data, size_t len) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return locus_fail(LOCUS_E_IO, "%s: cannot create (%s)", path, strerror(errno));
    int ok = write_all(fd, data, len) == 0 && fsync(fd) == 0;
    int e = errno;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp, path) != 0) {
        if (ok) e = errno;
        unlink(tmp);
        return locus_fail(LOCUS_E_IO, "%s: cannot write (%s)", path, strerror(e));
    }
    return LOCUS_OK;
}

locus_status locus_append_durable(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return locus_fail(LOCUS_E_IO, "%s: cannot open for appending (%s)", path, strerror(errno));
    /* one write() call: a killed process cannot leave half a record behind */
    ssize_t w = write(fd, data, len);
    int e = errno;
    int ok = w == (ssize_t)len && fsync(fd) == 0;
    if (w >= 0 && w != (ssize_t)len) e = ENOSPC;
    close(fd);
    return ok ? LOCUS_OK : locus_fail(LOCUS_E_IO, "%s: cannot append (%s)", path, strerror(e));
}

locus_status locus_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return locus_fail(errno == ENOENT ? LOCUS_E_NOTFOUND : LOCUS_E_IO, "%s: cannot open (%s)", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        cap *= 2;
        b = realloc(b, cap + 1);
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(b); return locus_fail(LOCUS_E_IO, "%s: read error", path); }
    b[n] = 0;
    *data = b;
    *len = n;
    return LOCUS_OK;
}

locus_status locus_mkdir(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) return locus_fail(LOCUS_E_IO, "%s: cannot create directory (%s)", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) return locus_fail(LOCUS_E_IO, "%s: cannot create directory (%s)", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) || !S_ISDIR(st.st_mode)) return locus_fail(LOCUS_E_IO, "%s: not a directory", buf);
    return LOCUS_OK;
}
