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

int locus_open_regular(const char *path, locus_status *st) {
    locus_status dummy;
    if (!st) st = &dummy;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        *st = locus_fail(errno == ENOENT ? LOCUS_E_NOTFOUND : LOCUS_E_IO, "%s: cannot open (%s)", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        *st = locus_fail(LOCUS_E_IO, "%s: not a regular file", path);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *st = LOCUS_OK;
    return fd;
}

FILE *locus_fopen_regular(const char *path, locus_status *st) {
    int fd = locus_open_regular(path, st);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        locus_status s = locus_fail(LOCUS_E_NOMEM, "%s: cannot open (%s)", path, strerror(errno));
        if (st) *st = s;
    }
    return f;
}

locus_status locus_output_check(const char *path) {
    struct stat sb;
    if (!*path) return locus_fail(LOCUS_E_ARG, "empty output path");
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode)) return locus_fail(LOCUS_E_IO, "%s: not a regular file (an output replaces only a regular file)", path);
        return LOCUS_OK;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return LOCUS_OK;
    if (slash == dir) slash[1] = 0; else *slash = 0;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return locus_fail(LOCUS_E_IO, "%s: cannot create (no directory %s)", path, dir);
    return LOCUS_OK;
}

int locus_create_tmp(const char *path, char *tmp, size_t n) {
    if (locus_output_check(path)) return -1;
    if ((size_t)snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid()) >= n) {
        locus_fail(LOCUS_E_ARG, "%s: path too long", path);
        return -1;
    }
    unlink(tmp); /* a leftover of an earlier process with the same pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) locus_fail(LOCUS_E_IO, "%s: cannot create (%s)", path, strerror(errno));
    return fd;
}

locus_status locus_write_atomic(const char *path, const void *data, size_t len) {
    char tmp[4200];
    int fd = locus_create_tmp(path, tmp, sizeof tmp);
    if (fd < 0) return LOCUS_E_IO;
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
    if (locus_output_check(path)) return LOCUS_E_IO;
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
    locus_status st;
    FILE *f = locus_fopen_regular(path, &st);
    if (!f) return st;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (!b) { fclose(f); return locus_fail(LOCUS_E_NOMEM, "%s: out of memory reading it", path); }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        cap *= 2;
        char *nb = realloc(b, cap + 1);
        if (!nb) free(b);
        b = nb;
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

int locus_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int locus_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}
